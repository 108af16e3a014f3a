#!/usr/bin/env bash
# Change data capture across samsa restarts, with a Postgres and a samsa of
# this test's own (tests/lib.sh):
#
#  1. a connector made through the Connect REST API survives a clean
#     restart: it is listed again and keeps streaming.
#  2. samsa killed with SIGKILL while Postgres commits a 100k-row insert
#     stream (one row per transaction), then started again: every row
#     appears exactly once, in commit order.
#
# Environment: SAMSA_BIN, SAMSA_TEST_DIR (scratch space; default a temp dir).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"

fail() {
	echo "cdc_restart.sh: FAILED: $*" >&2
	samsa_log_tail 40
	exit 1
}

[ -x "$SAMSA_PY" ] || fail "no interop venv at $SAMSA_PY (scripts/deps.sh)"
base=${SAMSA_TEST_DIR:-${TMPDIR:-/tmp}}
work=$(mktemp -d "$base/cdc.XXXXXX") || fail "mktemp"
chmod 755 "$work"
loader=
cleanup() {
	[ -n "$loader" ] && kill "$loader" 2>/dev/null && wait "$loader" 2>/dev/null
	samsa_cleanup || echo "cdc_restart.sh: cleanup: samsa or Postgres did not stop cleanly" >&2
	[ "${SAMSA_KEEP_TEST_DIR:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT

samsa_start "$work" || fail "samsa did not start"
wait_port 127.0.0.1 "${SAMSA_CONNECT_URL##*:}" || fail "no Connect port"
psqlc() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$SAMSA_PG_PORT" -U postgres "$@"; }
psqlc -d postgres -c "CREATE DATABASE cdcsrc" || fail "createdb"
psqlc -d cdcsrc -c "CREATE TABLE feed (id int PRIMARY KEY, note text)" \
	-c "INSERT INTO feed SELECT g, 'seed' FROM generate_series(1, 10) g" \
	-c "CREATE PROCEDURE stream(n int) LANGUAGE plpgsql AS \$\$ BEGIN
	    FOR i IN 11..n + 10 LOOP INSERT INTO feed VALUES (i, 'row'); COMMIT; END LOOP; END \$\$" ||
	fail "schema"

cat >"$work/src.json" <<JSON
{"name": "feed-source", "config": {
  "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
  "database.hostname": "127.0.0.1", "database.port": "$SAMSA_PG_PORT",
  "database.user": "postgres", "database.password": "postgres",
  "database.dbname": "cdcsrc", "topic.prefix": "feed",
  "key.converter": "org.apache.kafka.connect.storage.StringConverter",
  "value.converter": "org.apache.kafka.connect.json.JsonConverter",
  "value.converter.schemas.enable": "false",
  "transforms": "unwrap",
  "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState"}}
JSON
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
	--data @"$work/src.json" "$SAMSA_CONNECT_URL/connectors")
[ "$code" = 201 ] || fail "POST /connectors gave $code"

# Counts the topic's records and checks ids 1..N once each, in order.
check() { # EXPECTED
	"$SAMSA_PY" - "$1" <<'PY'
import json, os, sys, time
from confluent_kafka import Consumer, TopicPartition
want = int(sys.argv[1])
c = Consumer({"bootstrap.servers": os.environ["SAMSA_BOOTSTRAP"],
              "group.id": "cdc-check-%d" % time.time_ns(),
              "enable.auto.commit": False})
ids, deadline = [], time.time() + 120
while time.time() < deadline:
    if "feed.public.feed" in c.list_topics(timeout=5).topics:
        break
    time.sleep(0.5)
c.assign([TopicPartition("feed.public.feed", 0, 0)])
while len(ids) < want and time.time() < deadline:
    for m in c.consume(1000, 0.5):
        if not m.error():
            ids.append(json.loads(m.value())["id"])
time.sleep(1)  # anything beyond what we expect would be a repeat
for m in c.consume(1000, 1):
    if not m.error():
        ids.append(json.loads(m.value())["id"])
c.close()
if ids != list(range(1, want + 1)):
    dup = len(ids) - len(set(ids))
    sys.exit(f"expected ids 1..{want} once each in order; got {len(ids)} "
             f"records, {dup} repeated, first bad at "
             f"{next((i for i, (a, b) in enumerate(zip(ids, range(1, want + 1))) if a != b), len(ids))}")
print(f"{want} records, each once, in order")
PY
}

check 10 || fail "snapshot"

# 1. a clean restart keeps the connector
samsa_restart || fail "restart"
names=$(curl -s "$SAMSA_CONNECT_URL/connectors")
[ "$names" = '["feed-source"]' ] || fail "connectors after restart: $names"
psqlc -d cdcsrc -c "CALL stream(10)" || fail "insert"
check 20 || fail "streaming after a clean restart"

# 2. SIGKILL during a 100k-row insert stream (acceptance 3 of issue 6)
psqlc -d cdcsrc -c "TRUNCATE feed" >/dev/null 2>&1 # (not captured by the unwrap)
psqlc -d cdcsrc -c "CREATE TABLE IF NOT EXISTS done (x int)" || fail "schema"
psqlc -d cdcsrc -c "DROP PROCEDURE stream; CREATE PROCEDURE stream(n int) LANGUAGE plpgsql AS \$\$ BEGIN
	    FOR i IN 21..n + 20 LOOP INSERT INTO feed VALUES (i, 'row'); COMMIT; END LOOP; END \$\$" || fail "proc"
psqlc -d cdcsrc -c "CALL stream(100000)" &
loader=$!
sleep 2
samsa_kill
sleep 1
samsa_launch || fail "relaunch after SIGKILL"
wait "$loader" || fail "the insert stream failed"
loader=
check 100020 || fail "exactly once across SIGKILL"
echo "cdc_restart: ok"
