#!/usr/bin/env bash
# Sink topics across samsa crashes, with a Postgres and a samsa of this
# test's own (tests/lib.sh):
#
#   100k Avro records over 5k string keys in a topic, two JDBC sink
#   connectors on it (one upserting by key, one appending every record with
#   pk.mode=none), samsa killed with SIGKILL twice while they apply, then
#   started again: the upsert table holds exactly the last value per key,
#   the append table every record exactly once (a repeat would be a second
#   row), and both stored offsets equal the log end.
#
# Also prints the sink's rows/s (for bench/, not a test).
#
# Environment: SAMSA_BIN, SAMSA_TEST_DIR (scratch space; default a temp dir).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"

test_begin sink_restart
chmod 755 "$work"

N=${SINK_RECORDS:-100000}
KEYS=${SINK_KEYS:-5000}

samsa_start "$work" || fail "samsa did not start"
wait_port 127.0.0.1 "${SAMSA_CONNECT_URL##*:}" || fail "no Connect port"
psqlc() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$SAMSA_PG_PORT" -U postgres "$@"; }
psqlc -d postgres -c "CREATE DATABASE sinkdst" || fail "createdb"

# N records: key str(i % KEYS), value {id: i % KEYS, seq: i}
"$SAMSA_PY" - "$N" "$KEYS" <<'PY' || fail "producing"
import json, os, sys
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
n, keys = int(sys.argv[1]), int(sys.argv[2])
boot = os.environ["SAMSA_BOOTSTRAP"]
a = AdminClient({"bootstrap.servers": boot})
a.create_topics([NewTopic("crash", 1, 1)])["crash"].result(30)
schema = json.dumps({"type": "record", "name": "Row", "namespace": "crash",
                     "fields": [{"name": "id", "type": "int"},
                                {"name": "seq", "type": "long"},
                                {"name": "note", "type": ["null", "string"],
                                 "default": None}]})
ser = AvroSerializer(SchemaRegistryClient({"url": os.environ["SAMSA_REGISTRY_URL"]}), schema)
ctx = SerializationContext("crash", MessageField.VALUE)
p = Producer({"bootstrap.servers": boot, "linger.ms": 20,
              "compression.type": "lz4", "enable.idempotence": True})
for i in range(n):
    p.produce("crash", key=str(i % keys).encode(),
              value=ser({"id": i % keys, "seq": i, "note": "r%d" % i}, ctx))
    if i % 10000 == 0:
        p.poll(0)
assert p.flush(60) == 0
print(f"produced {n} records over {keys} keys")
PY

url="jdbc:postgresql://127.0.0.1:$SAMSA_PG_PORT/sinkdst?user=postgres&password=postgres"
post() { # NAME TABLE MODE PKMODE
	local code
	code=$(curl -s -o "$work/post.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
		--data @- "$SAMSA_CONNECT_URL/connectors" <<JSON
{"name": "$1", "config": {
  "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
  "topics": "crash", "connection.url": "$url",
  "key.converter": "org.apache.kafka.connect.storage.StringConverter",
  "value.converter": "io.confluent.connect.avro.AvroConverter",
  "value.converter.schema.registry.url": "http://schema-registry:8081",
  "auto.create": "true", "insert.mode": "$3", "pk.mode": "$4",
  "pk.fields": "id", "table.name.format": "$2", "batch.size": "3000"}}
JSON
)
	[ "$code" = 201 ] || fail "POST $1 gave $code: $(cat "$work/post.out")"
}
offset_of() {
	psqlc -d sinkdst -At -c "SELECT coalesce((SELECT next_offset FROM samsa_sink_offsets WHERE connector = '$1'), 0)" 2>/dev/null || echo 0
}

t0=$(date +%s.%N)
post crash-last crash_last upsert record_key
post crash-all crash_all insert none

# Kill while both apply: once the upsert table has some but not all.
for round in 1 2; do
	for ((i = 0; i < 600; i++)); do
		o=$(offset_of crash-last)
		[ "${o:-0}" -gt 0 ] && break
		sleep 0.02
	done
	o=$(offset_of crash-last)
	a=$(offset_of crash-all)
	[ "$o" -lt "$N" ] || echo "sink_restart.sh: note: round $round: the sink was done before the kill ($o)" >&2
	echo "round $round: SIGKILL at offsets crash-last=$o crash-all=$a"
	samsa_kill
	psqlc -d sinkdst -c "DELETE FROM samsa_sink_offsets WHERE false" >/dev/null
	samsa_launch || fail "relaunch after SIGKILL"
	wait_port 127.0.0.1 "${SAMSA_CONNECT_URL##*:}" || fail "no Connect port after relaunch"
	names=$(curl -s "$SAMSA_CONNECT_URL/connectors")
	[ "$names" = '["crash-last","crash-all"]' ] || fail "connectors after the restart: $names"
	[ "$round" = 1 ] && sleep 0.3
done

for ((i = 0; i < 1200; i++)); do
	[ "$(offset_of crash-last)" = "$N" ] && [ "$(offset_of crash-all)" = "$N" ] && break
	sleep 0.1
done
t1=$(date +%s.%N)
[ "$(offset_of crash-last)" = "$N" ] || fail "crash-last stopped at $(offset_of crash-last): $(curl -s "$SAMSA_CONNECT_URL/connectors/crash-last/status")"
[ "$(offset_of crash-all)" = "$N" ] || fail "crash-all stopped at $(offset_of crash-all): $(curl -s "$SAMSA_CONNECT_URL/connectors/crash-all/status")"

# the log end, as a consumer sees it
end=$("$SAMSA_PY" -c '
import os
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": os.environ["SAMSA_BOOTSTRAP"], "group.id": "x"})
print(c.get_watermark_offsets(TopicPartition("crash", 0), timeout=10)[1])
c.close()')
[ "$end" = "$N" ] || fail "log end $end, expected $N"

res=$(psqlc -d sinkdst -At -c "SELECT count(*), count(*) FILTER (WHERE seq = $N - $KEYS + id AND note = 'r' || seq) FROM crash_last")
[ "$res" = "$KEYS|$KEYS" ] || fail "crash_last: (rows, rows with the last value) = $res, expected $KEYS|$KEYS"
res=$(psqlc -d sinkdst -At -c "SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM crash_all")
[ "$res" = "$N|$N|0|$((N - 1))" ] || fail "crash_all: (rows, distinct, min, max) = $res, expected $N|$N|0|$((N - 1))"
res=$(psqlc -d sinkdst -At -c "SELECT string_agg(connector || '=' || next_offset, ',' ORDER BY connector) FROM samsa_sink_offsets")
[ "$res" = "crash-all=$N,crash-last=$N" ] || fail "stored offsets: $res"
for c in crash-last crash-all; do
	st=$(curl -s "$SAMSA_CONNECT_URL/connectors/$c/status")
	case "$st" in *'"state":"RUNNING","worker_id"'*'"type":"sink"'*) ;; *) fail "$c status: $st" ;; esac
done
echo "crash_last: $KEYS rows, each the last value; crash_all: $N rows, each record once; offsets at the log end ($N)"
echo "applied with two SIGKILLs in $(echo "$t1 - $t0" | bc) s"

# Throughput, for bench/: a fresh connector over the same N records.
t0=$(date +%s.%N)
post bench-last bench_last upsert record_key
for ((i = 0; i < 1200; i++)); do
	[ "$(offset_of bench-last)" = "$N" ] && break
	sleep 0.05
done
t1=$(date +%s.%N)
[ "$(offset_of bench-last)" = "$N" ] || fail "bench-last stopped at $(offset_of bench-last)"
echo "sink throughput: $N records (batch.size 3000, upsert over $KEYS keys) in $(echo "$t1 - $t0" | bc) s: $(echo "$N / ($t1 - $t0)" | bc) records/s"
echo "sink_restart.sh: OK"
