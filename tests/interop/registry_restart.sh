#!/usr/bin/env bash
# Issue 7: the Schema Registry's ids are Postgres's, with a Postgres and a
# samsa of this test's own (tests/lib.sh):
#
#  1. schemas registered, samsa stopped and started again: the same ids,
#     versions, settings; a new schema gets a new id, an old one its old id.
#  2. a second samsa on the same database: it sees what the first
#     registered, both give one schema one id, and a change made through one
#     is enforced by the other at once (compatibility level).
#  3. a registry port already in use: samsa says so in one line and exits
#     non-zero.
#
# Environment: SAMSA_BIN, SAMSA_TEST_DIR (scratch space; default a temp dir).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"

second_pid=
on_cleanup() {
	if [ -n "$second_pid" ]; then
		kill -TERM "$second_pid" 2>/dev/null
		wait "$second_pid" 2>/dev/null
	fi
}
test_begin registry_restart

# sr URL METHOD PATH [BODY]: prints "STATUS JSON" of one request.
sr() {
	"$SAMSA_PY" - "$@" <<'EOF'
import sys, urllib.request, urllib.error
url, method, path = sys.argv[1:4]
body = sys.argv[4].encode() if len(sys.argv) > 4 else None
req = urllib.request.Request(url + path, data=body, method=method)
req.add_header("Content-Type", "application/vnd.schemaregistry.v1+json")
try:
    with urllib.request.urlopen(req, timeout=30) as r:
        print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
EOF
}

# expect WHAT GOT WANT
expect() {
	[ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'"
	echo "ok: $1"
}

schema() { # NAME EXTRA_FIELDS -> a register body
	printf '{"schema":"{\\"type\\":\\"record\\",\\"name\\":\\"%s\\",\\"fields\\":[{\\"name\\":\\"a\\",\\"type\\":\\"int\\"}%s]}"}' "$1" "$2"
}
S1=$(schema One "")
S2=$(schema Two "")
S2b=$(schema Two ',{\"name\":\"b\",\"type\":\"string\",\"default\":\"\"}')
S2bad=$(schema Two ',{\"name\":\"c\",\"type\":\"string\"}')
S3=$(schema Three "")

samsa_start "$work" || fail "could not start Postgres and samsa"
A=$SAMSA_REGISTRY_URL
echo "registry_restart: samsa on $SAMSA_BOOTSTRAP, registry $A"

id1=$(sr "$A" POST /subjects/one-value/versions "$S1")
id2=$(sr "$A" POST /subjects/two-value/versions "$S2")
id2b=$(sr "$A" POST /subjects/two-value/versions "$S2b")
expect "register one" "${id1%% *}" 200
expect "register two v2" "${id2b%% *}" 200
expect "set FULL on two" "$(sr "$A" PUT /config/two-value '{"compatibility":"FULL"}')" \
	'200 {"compatibility":"FULL"}'
versions_before=$(sr "$A" GET /subjects/two-value/versions)
latest_before=$(sr "$A" GET /subjects/two-value/versions/latest)

# 1. restart
samsa_restart || fail "samsa did not restart"
expect "same id for one after restart" "$(sr "$A" POST /subjects/one-value/versions "$S1")" "$id1"
expect "same id for two after restart" "$(sr "$A" POST /subjects/two-value/versions "$S2")" "$id2"
expect "versions after restart" "$(sr "$A" GET /subjects/two-value/versions)" "$versions_before"
expect "latest after restart" "$(sr "$A" GET /subjects/two-value/versions/latest)" "$latest_before"
expect "config after restart" "$(sr "$A" GET /config/two-value)" \
	'200 {"compatibilityLevel":"FULL"}'
id3=$(sr "$A" POST /subjects/three-value/versions "$S3")
n1=${id1#*:}
n1=${n1%\}}
n3=${id3#*:}
n3=${n3%\}}
[ "$n3" -gt "$n1" ] || fail "a new schema after restart got id $n3 (first was $n1)"
echo "ok: new schema after restart has a new id ($n3)"

# 2. a second samsa on the same database
kport=$(freeport) || fail freeport
rport=$(freeport) || fail freeport
"$SAMSA_BIN" --pg "$SAMSA_PG_CONNINFO" --kafka "127.0.0.1:$kport" \
	--advertise "127.0.0.1:$kport" --registry "127.0.0.1:$rport" \
	--connect "127.0.0.1:$(freeport)" >>"$work/second.log" 2>&1 &
second_pid=$!
wait_port 127.0.0.1 "$rport" 30 || fail "the second samsa's registry did not listen"
B=http://127.0.0.1:$rport
expect "B sees A's schemas" "$(sr "$B" POST /subjects/one-value/versions "$S1")" "$id1"
expect "B sees A's config" "$(sr "$B" GET /config/two-value)" \
	'200 {"compatibilityLevel":"FULL"}'
idB=$(sr "$B" POST /subjects/four-value/versions "$(schema Four "")")
expect "A sees B's new schema" "$(sr "$A" POST /subjects/four-value/versions "$(schema Four "")")" "$idB"
expect "A: four has one version" "$(sr "$A" GET /subjects/four-value/versions)" "200 [1]"
# FULL refuses a field without a default; NONE set through B lets A accept
st=$(sr "$A" POST /subjects/two-value/versions "$S2bad")
expect "FULL refuses on A" "${st%% *}" 409
expect "NONE through B" "$(sr "$B" PUT /config/two-value '{"compatibility":"NONE"}')" \
	'200 {"compatibility":"NONE"}'
st=$(sr "$A" POST /subjects/two-value/versions "$S2bad")
expect "A accepts under NONE set by B" "${st%% *}" 200
expect "B sees version 3" "$(sr "$B" GET /subjects/two-value/versions)" "200 [1,2,3]"
# Both registering into one subject at once: every schema one version,
# numbered 1..n without gaps or doubles, and distinct schemas distinct ids.
race=$("$SAMSA_PY" - "$A" "$B" <<'PYEOF'
import json, sys, threading, urllib.request
urls, subject, ids, errors = sys.argv[1:], "race-value", [], []
def body(i):
    fields = [{"name": "a", "type": "int"},
              {"name": "f%d" % i, "type": "int", "default": 0}]
    return json.dumps({"schema": json.dumps(
        {"type": "record", "name": "R", "fields": fields})}).encode()
def worker(k):
    for j in range(10):
        req = urllib.request.Request(
            urls[k % 2] + "/subjects/%s/versions" % subject,
            data=body(k * 100 + j), method="POST",
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                ids.append(json.loads(r.read())["id"])
        except Exception as e:
            errors.append(str(e))
ts = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
[t.start() for t in ts]
[t.join() for t in ts]
with urllib.request.urlopen(urls[0] + "/subjects/%s/versions" % subject) as r:
    versions = json.loads(r.read())
print(len(ids), len(set(ids)), versions == list(range(1, 61)), errors[:1])
PYEOF
)
expect "concurrent registrations through A and B" "$race" "60 60 True []"
kill -TERM "$second_pid" 2>/dev/null
wait "$second_pid" 2>/dev/null || fail "the second samsa did not stop cleanly"
second_pid=

# 3. the registry port in use (the first samsa's)
port=${A##*:}
out=$("$SAMSA_BIN" --pg "$SAMSA_PG_CONNINFO" --kafka "127.0.0.1:$(freeport)" \
	--registry "127.0.0.1:$port" --connect "127.0.0.1:$(freeport)" 2>&1)
rc=$?
[ "$rc" != 0 ] || fail "samsa started with its registry port in use"
echo "$out" | grep -q "cannot listen on 127.0.0.1:$port" ||
	fail "no clear message for a registry port in use: $out"
echo "ok: port in use: $(echo "$out" | grep 'cannot listen')"
samsa_alive || fail "the first samsa died"
echo "registry_restart: all passed"
