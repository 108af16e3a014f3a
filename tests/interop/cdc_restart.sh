#!/usr/bin/env bash
# Change data capture across samsa restarts, with a Postgres and a samsa of
# this test's own (tests/lib.sh):
#
#  1. a connector made through the Connect REST API survives a clean
#     restart: it is listed again and keeps streaming.
#  2. samsa killed with SIGKILL while Postgres commits a 100k-row insert
#     stream (one row per transaction), then started again: every row
#     appears exactly once, in commit order.
#  3. a connector with slot.drop.on.stop=true: a clean stop of samsa
#     drops its replication slot before samsa exits; the others keep
#     theirs.
#  4. Postgres restarted, then stopped for a few seconds and started again,
#     between rows committed: the tasks start again by themselves (after
#     Debezium's retriable.restart.connector.wait.ms, 10 s by default) and
#     every row still appears exactly once, in commit order.
#
# With three connectors on the same table: JSON values (feed.public.feed),
# AvroConverter values in the registry's wire format (afeed.public.feed,
# read with confluent-kafka's AvroDeserializer), and JSON values on a topic
# of three partitions made beforehand (pfeed.public.feed: rows spread by
# key, each partition in commit order).
#
# Environment: SAMSA_BIN, SAMSA_TEST_DIR (scratch space; default a temp dir).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"

loader=
on_cleanup() {
	[ -n "$loader" ] && kill "$loader" 2>/dev/null && wait "$loader" 2>/dev/null
}
test_begin cdc_restart
chmod 755 "$work"

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
sed -e 's/"feed-source"/"afeed-source"/' -e 's/"topic.prefix": "feed"/"topic.prefix": "afeed", "slot.name": "afeed"/' \
	-e 's/"org.apache.kafka.connect.json.JsonConverter"/"io.confluent.connect.avro.AvroConverter", "value.converter.schema.registry.url": "http:\/\/sr:8081"/' \
	"$work/src.json" >"$work/asrc.json"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
	--data @"$work/asrc.json" "$SAMSA_CONNECT_URL/connectors")
[ "$code" = 201 ] || fail "POST /connectors (Avro) gave $code"
"$SAMSA_PY" "$here/python/samsa_client.py" create-topic pfeed.public.feed 3 ||
	fail "create pfeed.public.feed"
sed -e 's/"feed-source"/"pfeed-source"/' -e 's/"topic.prefix": "feed"/"topic.prefix": "pfeed", "slot.name": "pfeed"/' \
	"$work/src.json" >"$work/psrc.json"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
	--data @"$work/psrc.json" "$SAMSA_CONNECT_URL/connectors")
[ "$code" = 201 ] || fail "POST /connectors (partitions) gave $code"

# Counts the topic's records and checks ids 1..N once each, in order in
# each partition.
check() { # EXPECTED [TOPIC]
	"$SAMSA_PY" - "$1" "${2:-feed.public.feed}" <<'PY'
import json, os, sys, time
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
want, topic = int(sys.argv[1]), sys.argv[2]
if topic.startswith("afeed."):
    deser = AvroDeserializer(SchemaRegistryClient({"url": os.environ["SAMSA_REGISTRY_URL"]}))
    ctx = SerializationContext(topic, MessageField.VALUE)
    def row_id(v):
        assert v[0] == 0, "not Confluent's wire format"
        return deser(v, ctx)["id"]
else:
    def row_id(v):
        return json.loads(v)["id"]
c = Consumer({"bootstrap.servers": os.environ["SAMSA_BOOTSTRAP"],
              "group.id": "cdc-check-%d" % time.time_ns(),
              "enable.auto.commit": False})
ids, deadline = [], time.time() + 120
while time.time() < deadline:
    if topic in c.list_topics(timeout=5).topics:
        break
    time.sleep(0.5)
parts = len(c.list_topics(topic, timeout=5).topics[topic].partitions)
c.assign([TopicPartition(topic, p, 0) for p in range(parts)])
by_part = {p: [] for p in range(parts)}
def take(msgs):
    for m in msgs:
        if not m.error():
            by_part[m.partition()].append(row_id(m.value()))
while sum(map(len, by_part.values())) < want and time.time() < deadline:
    take(c.consume(1000, 0.5))
time.sleep(1)  # anything beyond what we expect would be a repeat
take(c.consume(1000, 1))
c.close()
ids = sorted(i for p in by_part.values() for i in p)
if ids != list(range(1, want + 1)):
    dup = len(ids) - len(set(ids))
    sys.exit(f"{topic}: expected ids 1..{want} once each; got {len(ids)} "
             f"records, {dup} repeated, first bad at "
             f"{next((i for i, (a, b) in enumerate(zip(ids, range(1, want + 1))) if a != b), len(ids))}")
for p, got in by_part.items():
    if got != sorted(got):
        sys.exit(f"{topic}: partition {p} out of commit order")
if parts > 1 and not all(by_part.values()):
    sys.exit(f"{topic}: some of its {parts} partitions got nothing")
print(f"{topic}: {want} records in {parts} partition(s), each once, in order")
PY
}

check 10 || fail "snapshot"
check 10 afeed.public.feed || fail "snapshot (Avro)"
check 10 pfeed.public.feed || fail "snapshot (partitions)"

# 1. a clean restart keeps the connector
samsa_restart || fail "restart"
# (samsa_restart waits for the Kafka port; Connect listens a bit later)
wait_port 127.0.0.1 "${SAMSA_CONNECT_URL##*:}" || fail "no Connect port after restart"
names=$(curl -s "$SAMSA_CONNECT_URL/connectors")
[ "$names" = '["feed-source","afeed-source","pfeed-source"]' ] || fail "connectors after restart: $names"
psqlc -d cdcsrc -c "CALL stream(10)" || fail "insert"
check 20 || fail "streaming after a clean restart"
check 20 afeed.public.feed || fail "streaming after a clean restart (Avro)"
check 20 pfeed.public.feed || fail "streaming after a clean restart (partitions)"
versions=$(curl -s "$SAMSA_REGISTRY_URL/subjects/afeed.public.feed-value/versions")
[ "$versions" = '[1]' ] || fail "afeed.public.feed-value versions after a restart: $versions"

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
wait_port 127.0.0.1 "${SAMSA_CONNECT_URL##*:}" || fail "no Connect port after relaunch"
wait "$loader" || fail "the insert stream failed"
loader=
check 100020 || fail "exactly once across SIGKILL"
check 100020 afeed.public.feed || fail "exactly once across SIGKILL (Avro)"
check 100020 pfeed.public.feed || fail "exactly once across SIGKILL (partitions)"

# 3. slot.drop.on.stop at a clean stop
slots() { psqlc -d postgres -At -c "SELECT string_agg(slot_name, ',' ORDER BY slot_name) FROM pg_replication_slots"; }
sed -e 's/"feed-source"/"dfeed-source"/' -e 's/"topic.prefix": "feed"/"topic.prefix": "dfeed", "slot.name": "dfeed", "slot.drop.on.stop": "true"/' \
	"$work/src.json" >"$work/dsrc.json"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
	--data @"$work/dsrc.json" "$SAMSA_CONNECT_URL/connectors")
[ "$code" = 201 ] || fail "POST /connectors (slot.drop.on.stop) gave $code"
for _ in $(seq 100); do
	[ "$(slots)" = "afeed,debezium,dfeed,pfeed" ] && break
	sleep 0.2
done
[ "$(slots)" = "afeed,debezium,dfeed,pfeed" ] || fail "slots before the stop: $(slots)"
samsa_stop || fail "samsa did not stop cleanly with a slot to drop"
[ "$(slots)" = "afeed,debezium,pfeed" ] || fail "slots after the stop: $(slots) (dfeed should be gone)"
grep -aq "replication slot dfeed dropped (slot.drop.on.stop)" "$SAMSA_LOG" ||
	fail "samsa did not log the slot it dropped"
echo "cdc_restart: 3. slot.drop.on.stop: the slot dropped at a clean stop, the others kept: ok"

# 4. Postgres goes away under the running connectors.
samsa_launch || fail "launch for step 4"
wait_port 127.0.0.1 "${SAMSA_CONNECT_URL##*:}" || fail "no Connect port for step 4"
psqlc -d cdcsrc -c "CREATE PROCEDURE more(a int, n int) LANGUAGE plpgsql AS \$\$ BEGIN
	    FOR i IN a..a + n - 1 LOOP INSERT INTO feed VALUES (i, 'row'); COMMIT; END LOOP; END \$\$" ||
	fail "proc more"
psqlc -d cdcsrc -c "CALL more(100021, 3000)" || fail "insert before the restart"
sleep 1
pg_restart || fail "pg_restart"
psqlc -d cdcsrc -c "CALL more(103021, 3000)" || fail "insert after the restart"
"$SAMSA_PGSH" stop "$SAMSA_PG_DATA" || fail "stop Postgres"
sleep 3
"$SAMSA_PGSH" start "$SAMSA_PG_DATA" "$SAMSA_PG_PORT" || fail "start Postgres again"
psqlc -d cdcsrc -c "CALL more(106021, 3000)" || fail "insert after Postgres was back"
check 109020 || fail "exactly once across Postgres going away"
check 109020 afeed.public.feed || fail "exactly once across Postgres going away (Avro)"
check 109020 pfeed.public.feed || fail "exactly once across Postgres going away (partitions)"
for c in feed-source afeed-source pfeed-source; do
	st=$(curl -s "$SAMSA_CONNECT_URL/connectors/$c/status")
	grep -q '"tasks":\[{"id":0,"state":"RUNNING"' <<<"$st" || fail "$c after Postgres came back: $st"
done
grep -aq "lost Postgres" "$SAMSA_LOG" || fail "samsa did not log losing Postgres"
samsa_alive || fail "samsa died while Postgres was away"
samsa_stop || fail "samsa did not stop cleanly after step 4"
echo "cdc_restart: 4. Postgres restarted and away for 3 s: the tasks came back, every row once, in order: ok"
echo "cdc_restart: ok"
