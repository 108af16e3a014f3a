#!/usr/bin/env bash
# Change data capture benchmark (never a test), against a samsa and a
# Postgres of its own (tests/lib.sh); the captured database is that same
# Postgres, as in the CDC tests.
#
#   bench/cdc.sh
#   BENCH_CDC_SECONDS=20 BENCH_CDC_RATES="1000 2000 4000 8000" bench/cdc.sh
#   BENCH_CDC_BATCH=10 BENCH_CDC_RATES="20000 40000 80000" bench/cdc.sh
#   (results go to bench/results/cdc.md, or $BENCH_CDC_OUT)
#
# 1. Latency: a plpgsql loop commits one row per transaction at
#    BENCH_CDC_LATENCY_RATE rows/s (default 1000) for BENCH_CDC_SECONDS
#    (default 20), each row holding clock_timestamp() in microseconds taken
#    just before its COMMIT; a confluent-kafka consumer (librdkafka defaults)
#    on the connector's topic takes now - that time for every record.
#    The first 2 s are warm-up and not counted.
# 2. Sustained rate: for each rate in BENCH_CDC_RATES the same loop (split
#    over BENCH_CDC_SESSIONS sessions, default 8) runs for BENCH_CDC_SECONDS
#    while the slot's lag, pg_current_wal_lsn() - confirmed_flush_lsn, is
#    sampled every second. A rate is sustained when the lag stays flat: its
#    least-squares slope is under 5% of the rate WAL is written at, or its
#    peak in the last 5 s is at most 1.5 times its peak in the first 5 s.
#    The loaders commit BENCH_CDC_BATCH rows per transaction (default 1;
#    fsync on), so past some rate they, not samsa, are the limit:
#    "committed rows/s" shows it.
#
# Writes bench/results/cdc.md and prints it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source tests/lib.sh
export BENCH_CDC_SECONDS=${BENCH_CDC_SECONDS:-20}
export BENCH_CDC_LATENCY_RATE=${BENCH_CDC_LATENCY_RATE:-1000}
export BENCH_CDC_RATES=${BENCH_CDC_RATES:-"1000 2000 4000 8000 16000"}
export BENCH_CDC_SESSIONS=${BENCH_CDC_SESSIONS:-8}
export BENCH_CDC_BATCH=${BENCH_CDC_BATCH:-1}
work=$(mktemp -d /tmp/samsa-bench-cdc.XXXXXX)
chmod 755 "$work"
trap 'samsa_cleanup; rm -rf "$work"' EXIT
samsa_start "$work"
wait_port 127.0.0.1 "${SAMSA_CONNECT_URL##*:}"
export SAMSA_PG_PORT SAMSA_CONNECT_URL SAMSA_BOOTSTRAP
psqlc() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$SAMSA_PG_PORT" -U postgres "$@"; }
psqlc -d postgres -c "CREATE DATABASE cdcbench"
psqlc -d cdcbench -c "CREATE TABLE ev (id bigserial PRIMARY KEY, t_us bigint NOT NULL, note text)" \
	-c "CREATE PROCEDURE load(rate float8, n int, per int) LANGUAGE plpgsql AS \$\$
	DECLARE t0 timestamptz := clock_timestamp(); BEGIN
	  FOR i IN 1..n / per LOOP
	    INSERT INTO ev (t_us, note)
	      SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint, 'x'
	      FROM generate_series(1, per);
	    COMMIT;
	    PERFORM pg_sleep(greatest(0, extract(epoch FROM
	      t0 + make_interval(secs => i * per / rate) - clock_timestamp())));
	  END LOOP; END \$\$"

mkdir -p bench/results
"$SAMSA_PY" - <<'PY' | tee "${BENCH_CDC_OUT:-bench/results/cdc.md}"
import json, os, subprocess, threading, time, urllib.request
from confluent_kafka import Consumer, TopicPartition

port = os.environ["SAMSA_PG_PORT"]
secs = int(os.environ["BENCH_CDC_SECONDS"])
lat_rate = float(os.environ["BENCH_CDC_LATENCY_RATE"])
rates = [float(r) for r in os.environ["BENCH_CDC_RATES"].split()]
sessions = int(os.environ["BENCH_CDC_SESSIONS"])
batch = int(os.environ["BENCH_CDC_BATCH"])
topic = "bench.public.ev"

def psql(sql, db="cdcbench"):
    return subprocess.run(["psql", "-X", "-q", "-At", "-h", "127.0.0.1", "-p", port,
                           "-U", "postgres", "-d", db, "-c", sql], check=True,
                          capture_output=True, text=True).stdout.strip()

def loaders(rate, n_per, k, per=1):
    return [subprocess.Popen(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", port,
                              "-U", "postgres", "-d", "cdcbench", "-c",
                              f"CALL load({rate / k}, {n_per}, {per})"])
            for _ in range(k)]

cfg = {"name": "bench", "config": {
    "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
    "database.hostname": "127.0.0.1", "database.port": port,
    "database.user": "postgres", "database.password": "postgres",
    "database.dbname": "cdcbench", "topic.prefix": "bench", "slot.name": "bench",
    "key.converter": "org.apache.kafka.connect.storage.StringConverter",
    "value.converter": "org.apache.kafka.connect.json.JsonConverter",
    "value.converter.schemas.enable": "false",
    "transforms": "unwrap",
    "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState"}}
req = urllib.request.Request(os.environ["SAMSA_CONNECT_URL"] + "/connectors",
                             data=json.dumps(cfg).encode(), method="POST",
                             headers={"Content-Type": "application/json"})
urllib.request.urlopen(req, timeout=30).read()
psql("INSERT INTO ev (t_us, note) VALUES (0, 'warm-up')")

c = Consumer({"bootstrap.servers": os.environ["SAMSA_BOOTSTRAP"],
              "group.id": "bench-cdc", "enable.auto.commit": False})
deadline = time.time() + 60
while topic not in c.list_topics(timeout=5).topics:
    assert time.time() < deadline, "no topic"
    time.sleep(0.2)
c.assign([TopicPartition(topic, 0, 0)])

# 1. latency at lat_rate changes/s, one session
n = int(lat_rate * secs)
lat = []
p = loaders(lat_rate, n, 1)
t_start = time.time()
got = 0
deadline = time.time() + secs + 60
while got < n + 1 and time.time() < deadline:
    m = c.poll(0.1)  # one at a time: consume(n, t) would wait for n or t
    now = time.time()
    if m is not None and not m.error():
        got += 1
        v = json.loads(m.value())
        if v["t_us"] and v["t_us"] / 1e6 > t_start + 2:
            lat.append(now * 1000 - v["t_us"] / 1000)
for q in p:
    q.wait()
elapsed = time.time() - t_start
lat.sort()
pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print(f"# samsa change data capture, {time.strftime('%F %T', time.gmtime())} UTC\n")
print(f"Machine: {os.cpu_count()} cores; Postgres 15 (fsync and synchronous_commit on) "
      "shared by the captured database and samsa's own storage.\n")
print(f"## Commit-to-consumer latency at {lat_rate:.0f} changes/s\n")
print(f"{got - 1} of {n} changes consumed; {len(lat)} measured (after 2 s warm-up).\n")
print("| p50 | p90 | p99 | p99.9 | max |\n|---|---|---|---|---|")
print("| " + " | ".join(f"{pct(q):.1f} ms" for q in (0.5, 0.9, 0.99, 0.999)) +
      f" | {lat[-1]:.1f} ms |\n")
c.close()

# 2. sustained rate
def lag():
    return int(psql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) "
                    "FROM pg_replication_slots WHERE slot_name = 'bench'"))
def wal():
    return int(psql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')"))
def rows():
    return int(psql("SELECT count(*) FROM ev"))

print(f"## Sustained change rate ({sessions} loader sessions, {batch} row(s) "
      f"per transaction, {secs} s each)\n")
print("| target rows/s | committed rows/s | WAL KiB/s | slot lag first 5 s | last 5 s | lag slope KiB/s | drain after load | flat |")
print("|---|---|---|---|---|---|---|---|")
for rate in rates:
    time.sleep(2)
    r0, w0 = rows(), wal()
    t0 = time.time()
    p = loaders(rate, int(rate * secs / sessions), sessions, batch)
    samples = []
    while any(q.poll() is None for q in p):
        samples.append((time.time() - t0, lag()))
        time.sleep(1)
    t1 = time.time()
    r1, w1 = rows(), wal()
    drain = None
    while time.time() - t1 < 120:
        if lag() < 64 * 1024:
            drain = time.time() - t1
            break
        time.sleep(0.2)
    xs = [s[0] for s in samples]; ys = [s[1] for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / \
        max(1e-9, sum((x - mx) ** 2 for x in xs))
    walrate = (w1 - w0) / (t1 - t0)
    first = max(ys[:5]) / 1024; last = max(ys[-5:]) / 1024
    flat = slope < 0.05 * walrate or last <= 1.5 * first
    print(f"| {rate:.0f} | {(r1 - r0) / (t1 - t0):.0f} | {walrate / 1024:.0f} | "
          f"{first:.0f} KiB | {last:.0f} KiB | {slope / 1024:.1f} | "
          f"{'%.1f s' % drain if drain is not None else '>120 s'} | {'yes' if flat else 'no'} |")
PY
