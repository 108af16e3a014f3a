#!/usr/bin/env bash
# Logging in as Postgres roles (--kafka-auth postgres), with a Postgres and
# a samsa of this test's own (tests/lib.sh).  The role alice has a password
# and pg_hba.conf makes her give it (scram-sha-256); Postgres, not samsa,
# judges it.  Three client implementations log in with SASL/PLAIN over
# SASL_PLAINTEXT: librdkafka (kcat), the Java client (Kafka's own
# kafka-topics, TopicCommand) and kafkajs.
#
#  1. alice with her password: kcat produces a record and reads it back;
#     kafka-topics and kafkajs list the topic.
#     40 clients logging in at once all get in: at most 16 logins hold a
#     Postgres connection at a time, the others wait their turn;
#  2. a wrong password, a role that does not exist, a role without LOGIN:
#     each client fails with SASL_AUTHENTICATION_FAILED carrying Postgres's
#     reason, and samsa logs the refusal.
#  3. a client that does not log in (PLAINTEXT) gets no metadata: samsa
#     closes its connection at its first request; a frame of more than
#     512 KiB before the login closes it before it is read (as Kafka's
#     sasl.server.max.receive.size), so no one unknown fills samsa's memory.
#  4. Postgres stays the judge: after ALTER ROLE ... PASSWORD the old
#     password is refused and the new one taken, without restarting samsa.
#  5. --rest-auth postgres: the Schema Registry and Connect REST APIs take
#     HTTP Basic logins the same way (confluent-kafka's registry client
#     registers a schema as alice; no login or a wrong one gets 401 with a
#     WWW-Authenticate challenge).
#  6. SASL/SCRAM-SHA-256, relayed to Postgres: confluent-kafka, kafka-topics
#     and kafkajs log in as alice and are refused with a wrong password, an
#     unknown role or a role without LOGIN, each with Postgres's reason; a role that pg_hba.conf
#     trusts is refused with a reason that says so (Postgres checks no
#     proof for it); kcat's librdkafka 2.0, which repeats its nonce, is
#     refused with a reason that names the bug; SCRAM-SHA-512 is not
#     offered.
#
# Environment: SAMSA_BIN, SAMSA_PY, SAMSA_TEST_DIR (scratch space; default a
# temp dir).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"

test_begin sasl
command -v kcat >/dev/null || fail "kcat is not installed (scripts/deps.sh)"
command -v node >/dev/null || fail "node is not installed (scripts/deps.sh)"
cpfile=$SAMSA_ROOT/tests/interop/java/target/test-classpath.txt
[ -s "$cpfile" ] || fail "no $cpfile: the Java client's classpath (scripts/deps.sh writes it)"

samsa_start "$work" --kafka-auth postgres --rest-auth postgres ||
	fail "could not start Postgres and samsa"

psql -X -q -v ON_ERROR_STOP=1 "$SAMSA_PG_CONNINFO" <<'SQL' || fail "could not create the roles"
CREATE ROLE alice LOGIN PASSWORD 'wonderland';
CREATE ROLE carol NOLOGIN PASSWORD 'carol-pw';
SQL
# Before the cluster's trust lines: alice and carol must give a password.
sed -i '1i host all alice,carol 127.0.0.1/32 scram-sha-256' "$SAMSA_PG_DATA/pg_hba.conf"
psql -X -q -At -c "SELECT pg_reload_conf()" "$SAMSA_PG_CONNINFO" >/dev/null ||
	fail "could not reload pg_hba.conf"

topic=sasl-$(date +%s)-$RANDOM

# The clients log in with $mech: PLAIN, or SCRAM-SHA-256 from step 6 on.
mech=PLAIN

kcat_as() { # USER PASSWORD KCAT-ARGS...
	local user=$1 password=$2
	shift 2
	timeout 60 kcat -b "$SAMSA_BOOTSTRAP" -X security.protocol=SASL_PLAINTEXT \
		-X sasl.mechanisms="$mech" -X sasl.username="$user" \
		-X sasl.password="$password" -m 10 "$@"
}

java_topics_as() { # USER PASSWORD: kafka-topics --list; stdout and stderr
	local module=org.apache.kafka.common.security.plain.PlainLoginModule
	[ "$mech" = PLAIN ] || module=org.apache.kafka.common.security.scram.ScramLoginModule
	printf '%s\n' security.protocol=SASL_PLAINTEXT sasl.mechanism="$mech" \
		"sasl.jaas.config=$module required username=\"$1\" password=\"$2\";" \
		>"$work/client.properties"
	timeout 120 java -cp "$(cat "$cpfile")" org.apache.kafka.tools.TopicCommand \
		--bootstrap-server "$SAMSA_BOOTSTRAP" \
		--command-config "$work/client.properties" --list 2>&1
}

node_topics_as() { # USER PASSWORD
	(cd "$here/node" && SAMSA_SASL_MECHANISM=${mech,,} \
		timeout 60 node list_topics.js "$SAMSA_BOOTSTRAP" "$1" "$2")
}

# 1. A good login, in each client.
echo "a record from alice" | kcat_as alice wonderland -P -t "$topic" ||
	fail "kcat could not produce as alice"
got=$(kcat_as alice wonderland -C -t "$topic" -o beginning -e -q) ||
	fail "kcat could not consume as alice"
[ "$got" = "a record from alice" ] || fail "kcat read back '$got'"
out=$(java_topics_as alice wonderland) || fail "kafka-topics as alice failed: $(tail -n 5 <<<"$out")"
grep -qx "$topic" <<<"$out" || fail "kafka-topics as alice did not list $topic: $(tail -n 5 <<<"$out")"
out=$(node_topics_as alice wonderland) || fail "kafkajs as alice failed: $out"
grep -qx "$topic" <<<"$out" || fail "kafkajs as alice did not list $topic: $out"
echo "sasl: 1. alice logged in: kcat produced and consumed, kafka-topics and kafkajs listed the topic: ok"
"$SAMSA_PY" - "$SAMSA_BOOTSTRAP" "$topic" <<'PY' || fail "40 logins at once did not all get in"
import os, subprocess, sys, threading
from confluent_kafka.admin import AdminClient
bootstrap, topic = sys.argv[1], sys.argv[2]
ok, most, done = [], [0], threading.Event()
def sample():  # alice's Postgres sessions: the logins under way
    while not done.is_set():
        n = subprocess.run(["psql", "-X", "-At", "-d", os.environ["SAMSA_PG_CONNINFO"], "-c",
                            "SELECT count(*) FROM pg_stat_activity WHERE usename = 'alice'"],
                           capture_output=True, text=True).stdout.strip()
        most[0] = max(most[0], int(n or 0))
sampler = threading.Thread(target=sample)
sampler.start()
def login():
    a = AdminClient({"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
                     "sasl.mechanisms": "PLAIN", "sasl.username": "alice",
                     "sasl.password": "wonderland"})
    ok.append(topic in a.list_topics(timeout=60).topics)
threads = [threading.Thread(target=login) for _ in range(40)]
for t in threads:
    t.start()
for t in threads:
    t.join()
done.set()
sampler.join()
assert ok == [True] * 40, ok
assert most[0] <= 16, "%d logins held a Postgres connection at once" % most[0]
PY
echo "sasl: 1. 40 logins at once: ok"

# 2. Refused logins carry Postgres's reason.
refused() { # WHAT USER PASSWORD REASON
	local what=$1 user=$2 password=$3 reason=$4 out
	# kcat reports the refusal at once but waits out -m before exiting.
	if out=$(kcat_as "$user" "$password" -m 3 -L 2>&1); then
		fail "kcat: $what was let in"
	fi
	grep -qF "Authentication failed: $reason" <<<"$out" ||
		fail "kcat: $what: no 'Authentication failed: $reason' in: $(tail -n 3 <<<"$out")"
	out=$(java_topics_as "$user" "$password")
	grep -q "SaslAuthenticationException: Authentication failed: $reason" <<<"$out" ||
		fail "kafka-topics: $what: no SaslAuthenticationException with '$reason' in: $(grep -m 3 -i exception <<<"$out")"
	if out=$(node_topics_as "$user" "$password"); then
		fail "kafkajs: $what was let in"
	fi
	grep -q "KafkaJSSASLAuthenticationError: .*Authentication failed: $reason" <<<"$out" ||
		fail "kafkajs: $what: $out"
}
refused "a wrong password" alice looking-glass 'password authentication failed for user "alice"'
refused "a role that does not exist" bob any-password 'role "bob" does not exist'
refused "a role without LOGIN" carol carol-pw 'role "carol" is not permitted to log in'
grep -aq 'login of alice from .* refused: password authentication failed' "$SAMSA_LOG" ||
	fail "samsa did not log the refused login"
echo "sasl: 2. wrong password, unknown role, role without LOGIN refused with Postgres's reason in all three clients: ok"

# 3. No login, no service.
if timeout 60 kcat -b "$SAMSA_BOOTSTRAP" -m 3 -L >"$work/plain.out" 2>&1; then
	fail "a client that did not log in got metadata"
fi
grep -aq 'Metadata before it logged in' "$SAMSA_LOG" ||
	fail "samsa did not log why it closed the connection of a client that did not log in"
"$SAMSA_PY" - "$SAMSA_BOOTSTRAP" <<'PY' || fail "a 100 MB frame before the login was not refused at once"
import socket, struct, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=10)
try:
    s.sendall(struct.pack(">i", 100 << 20) + b"\0" * 4096)
    assert s.recv(1) == b"", "data from samsa"
except (ConnectionResetError, BrokenPipeError):
    pass  # closed with our bytes unread: a reset
PY
grep -aq 'frame of 104857600 bytes before it logged in' "$SAMSA_LOG" ||
	fail "samsa did not log why it closed the connection of a big frame before the login"
echo "sasl: 3. a PLAINTEXT client gets nothing: ok"

# 4. Postgres judges every login.
psql -X -q -c "ALTER ROLE alice PASSWORD 'through-the-looking-glass'" "$SAMSA_PG_CONNINFO" ||
	fail "could not change alice's password"
if kcat_as alice wonderland -m 3 -L >/dev/null 2>&1; then
	fail "alice's old password still let her in"
fi
kcat_as alice through-the-looking-glass -L >/dev/null || fail "alice's new password was refused"
echo "sasl: 4. a new password takes effect at once: ok"

# 5. The REST listeners.
pw=through-the-looking-glass
headers=$(curl -s -o /dev/null -D - "$SAMSA_REGISTRY_URL/subjects") || fail "registry unreachable"
grep -q "^HTTP/1.1 401" <<<"$headers" || fail "the registry served a request without a login: $headers"
grep -qi '^WWW-Authenticate: Basic' <<<"$headers" || fail "no Basic challenge: $headers"
# Credentials that are not base64 (more padding than data) are no login.
for bad in '====' 'A=======' 'YWxpY2U6====' 'YQ=='; do
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Basic $bad" "$SAMSA_REGISTRY_URL/subjects")
	[ "$code" = 401 ] || fail "Basic $bad: HTTP $code, not 401"
done
samsa_alive || fail "samsa died of a malformed Basic header"
[ "$(curl -s -u "alice:$pw" "$SAMSA_CONNECT_URL/connectors")" = "[]" ] ||
	fail "Connect did not serve alice"
body=$(curl -s -u alice:wonderland "$SAMSA_CONNECT_URL/connectors")
grep -qF 'password authentication failed for user' <<<"$body" || fail "Connect with an old password: $body"
"$SAMSA_PY" - "$SAMSA_REGISTRY_URL" "$pw" <<'PY' || fail "the registry client as alice"
import sys
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
url, pw = sys.argv[1], sys.argv[2]
schema = Schema('{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}', "AVRO")
sid = SchemaRegistryClient({"url": url, "basic.auth.user.info": "alice:" + pw}).register_schema("sasl-value", schema)
assert sid >= 1, sid
try:
    SchemaRegistryClient({"url": url, "basic.auth.user.info": "alice:nope"}).get_subjects()
    raise SystemExit("a wrong password was let in")
except SchemaRegistryError as e:
    assert e.http_status_code == 401, e
    assert 'password authentication failed for user "alice"' in e.error_message, e
PY
echo "sasl: 5. the REST APIs: Basic logins as Postgres roles, 401 otherwise: ok"

# 6. SCRAM-SHA-256: Postgres checks the proof; samsa never sees a password.
# kcat's librdkafka (2.0) repeats its nonce in its final message, which
# Postgres (and Kafka 4) refuse; confluent-kafka's (2.16) does not.
mech=SCRAM-SHA-256
py_as() { # USER PASSWORD: produce a record and read it back with SCRAM
	timeout 90 "$SAMSA_PY" - "$SAMSA_BOOTSTRAP" "$topic" "$1" "$2" <<'PY'
import sys
from confluent_kafka import Consumer, KafkaException, Producer
bootstrap, topic, user, password = sys.argv[1:]
auth = {"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": user,
        "sasl.password": password}
errors = []
p = Producer(dict(auth, **{"error_cb": errors.append, "message.timeout.ms": 20000}))
p.produce(topic, b"a record by SCRAM")
left = p.flush(25)
if errors or left:
    print("; ".join(str(e) for e in errors) or "not delivered")
    sys.exit(1)
c = Consumer(dict(auth, **{"group.id": "scram", "auto.offset.reset": "earliest"}))
c.subscribe([topic])
seen = []
for _ in range(60):
    m = c.poll(1)
    if m is not None and m.error() is None:
        seen.append(m.value())
        if m.value() == b"a record by SCRAM":
            break
c.close()
if b"a record by SCRAM" not in seen:
    print("did not read the record back:", seen)
    sys.exit(1)
print("ok")
PY
}
out=$(py_as alice "$pw") || fail "confluent-kafka with SCRAM: $out"
out=$(java_topics_as alice "$pw") || fail "kafka-topics with SCRAM failed: $(tail -n 5 <<<"$out")"
grep -qx "$topic" <<<"$out" || fail "kafka-topics with SCRAM did not list $topic: $(tail -n 5 <<<"$out")"
out=$(node_topics_as alice "$pw") || fail "kafkajs with SCRAM failed: $out"
grep -qx "$topic" <<<"$out" || fail "kafkajs with SCRAM did not list $topic: $out"
refused_scram() { # WHAT USER PASSWORD REASON
	local what=$1 user=$2 password=$3 reason=$4 out
	out=$(py_as "$user" "$password") && fail "confluent-kafka: $what was let in"
	grep -qF "Authentication failed: $reason" <<<"$out" ||
		fail "confluent-kafka: $what: no 'Authentication failed: $reason' in: $out"
	out=$(java_topics_as "$user" "$password")
	grep -qF "SaslAuthenticationException: Authentication failed: $reason" <<<"$out" ||
		fail "kafka-topics: $what: no SaslAuthenticationException with '$reason' in: $(grep -m 3 -i exception <<<"$out")"
	out=$(node_topics_as "$user" "$password") && fail "kafkajs: $what was let in"
	grep -qF "Authentication failed: $reason" <<<"$out" || fail "kafkajs: $what: $out"
}
refused_scram "a wrong password (SCRAM)" alice wonderland 'password authentication failed for user "alice"'
refused_scram "a role that does not exist (SCRAM)" bob any-password 'role "bob" does not exist'
refused_scram "a role without LOGIN (SCRAM)" carol carol-pw 'role "carol" is not permitted to log in'
# The test's own superuser is let in by a trust line: no proof is checked.
su=$(psql -X -At -c "SELECT current_user" "$SAMSA_PG_CONNINFO") || fail "no current_user"
refused_scram "a trusted role (SCRAM)" "$su" any-password "Postgres let role \"$su\" in without checking a password"
out=$(kcat_as alice "$pw" -m 3 -L 2>&1) && fail "kcat (librdkafka 2.0) was let in with SCRAM"
grep -qF "librdkafka before 2.6.1" <<<"$out" ||
	fail "kcat with SCRAM: no word of librdkafka's repeated nonce in: $(tail -n 3 <<<"$out")"
mech=SCRAM-SHA-512
out=$(kcat_as alice "$pw" -m 3 -L 2>&1) && fail "SCRAM-SHA-512 was let in"
grep -q "PLAIN,SCRAM-SHA-256\|PLAIN, SCRAM-SHA-256" <<<"$out" ||
	fail "kcat with SCRAM-SHA-512: no list of the mechanisms offered in: $(tail -n 3 <<<"$out")"
echo "sasl: 6. SCRAM-SHA-256 relayed to Postgres (confluent-kafka, kafka-topics, kafkajs); refusals with Postgres's reason; librdkafka's old nonce and SCRAM-SHA-512 refused with what to do: ok"

samsa_alive || fail "samsa died"
samsa_stop || fail "samsa did not stop cleanly at the end"
echo "sasl: ok"
