"""Change data capture side by side (part `cdc` of bench/bench.py; also
bench/cdc.sh): samsa's table topics against Debezium's Postgres connector
(Kafka Connect standalone writing to Apache Kafka 4.x), and the ceiling,
pg_recvlogical with pgoutput, all on one Postgres (fsync and
synchronous_commit on) under the same insert/update load.

The captured table: ev (id bigserial PRIMARY KEY, t_us bigint, note text).
The load is a plpgsql procedure: each transaction either inserts PER rows
or updates the PER rows it inserted before (so half the changes are
inserts, half updates), each row holding clock_timestamp() in microseconds
taken just before the COMMIT.  SESSIONS sessions (psql waiting on CALL
load(...)) share a target rate on one schedule that begins two seconds
after they are launched, so that launching them is not load time; a
session behind schedule commits back to back until it is on time again.
The server makes the rows (INSERT ... SELECT FROM generate_series(1, PER)
RETURNING id, then UPDATE ... WHERE id = ANY (those ids)), so a session
costs one backend and no client CPU.

With synchronous_commit on, a session commits one transaction at a time
and waits for its WAL flush: that wait, not CPU, held the 8 sessions of
earlier runs to ~16k changes/s on this machine (~200 commits/s each; no
capturer), while 32 sessions reached ~58k/s.  So the load runs 32
sessions (BENCH_CDC_SESSIONS), the same for samsa and Debezium.  What is
left is the cost of the changes themselves: with 10 rows per transaction
~25-36 us of Postgres CPU per change, commits included, and no less from
a C client (pgbench -M prepared with the same two statements costs as
much, plus its own CPU), so that on 2 cores shared with a capturer and
its consumer the loaders saturated at 30-42k changes/s, below what samsa
sustains.  A commit costs Postgres about as much CPU as ten rows, so
the load commits PER = 100 rows per transaction (BENCH_CDC_PER): the
loaders then reach ~117k/s beside samsa.  A step still says when they
were saturated.  The table keeps half of each page free (fillfactor 50)
so that an update is a HOT update (no new index entry), as a DBA would
set it for an update-heavy table: the loaders' CPU per change fell by
~20% (16.6 vs 19.6 s for 1.6M changes at 80k/s), the same WAL changes
decoded.

Both capturers get the same connector (the seed's shape): pgoutput, no
snapshot (snapshot.mode=no_data),
StringConverter keys, JsonConverter values without schemas,
ExtractNewRecordState, a filtered publication of public.ev.  Debezium runs
with its defaults (poll.interval.ms 500, max.batch.size 2048) and Connect
with offset.flush.interval.ms=1000, so that its slot's confirmed position
moves about as often as samsa's (about once a second).

For each capturer:
1. latency: 1,000 changes/s in one-row transactions; a confluent-kafka
   consumer (librdkafka defaults, one poll per record) takes receive time
   minus the row's t_us: commit-to-consumer, p50/p99.
2. sustained rate: stepped target rates (PER rows per transaction,
   SESSIONS sessions).  A consumer at the topic's end counts every
   change and takes the age (arrival - t_us) of one in ten; a rate is
   sustained when the median age
   over the last 5 s of the load is at most twice (+0.5 s) that of seconds
   1-6, i.e. the lag is not growing, and every change has arrived within
   30 s after the load ends.  The figure is the committed rate (changes /
   time from the schedule's start to the last session's end), not the
   target.  The slot's lag, pg_current_wal_lsn() - confirmed_flush_lsn,
   is sampled every second too and reported, but not judged: Debezium
   confirms a position only with its offset commits and, without
   heartbeats, never past its last change, so it is no fair yardstick.
   Stepping stops at the first rate that is not sustained (then REFINE
   more steps halve the gap between it and the last one sustained), and
   after a sustained step whose sessions committed less than 90% of its target
   and less than 1.1 times what they committed in the step before (the
   loaders, or the machine, were saturated: a higher target would only
   measure them again); the result then says limited_by_loaders, and its
   figure is a floor.  A step short of its target but still rising is
   kept going: a capturer that takes the cores from the loaders slows
   them, and the committed rate is what is reported.  The consumer is a
   small C program (bench/ages.c, librdkafka), so that it is neither the
   bottleneck at a hundred thousand records/s nor a third of a core
   taken from the system measured, as the Python one was.
3. catch-up: with the capturer stopped (its slot kept), a backlog of
   changes is committed; the capturer is started again and the consumer
   times the first to the last of them: the rate it drains WAL at, which
   bounds the change rate it can ever sustain.  pg_recvlogical -P pgoutput
   drains the same kind of backlog to /dev/null: the ceiling.
"""

import json
import os
import signal
import subprocess
import threading
import time

import stacks
from stacks import ConnectStack, KafkaStack, Meter, PgStack, loadavg

DB = "cdcbench"
SESSIONS = int(os.environ.get("BENCH_CDC_SESSIONS", 32))
PER = int(os.environ.get("BENCH_CDC_PER", 100))
REFINE = 2


def log(*a):
    import sys
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


class Load:
    def __init__(self, pg):
        self.pg = pg

    def setup(self):
        self.pg.psql(f"CREATE DATABASE {DB}", db="postgres")
        self.pg.psql("""
CREATE TABLE ev (id bigserial PRIMARY KEY, t_us bigint NOT NULL, note text)
  WITH (fillfactor = 50);
CREATE PROCEDURE load(rate float8, n int, per int, start float8 DEFAULT 0)
LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := CASE WHEN start > 0 THEN to_timestamp(start)
                               ELSE clock_timestamp() END;
        ids bigint[];
BEGIN
  PERFORM pg_sleep(greatest(0, extract(epoch FROM t0 - clock_timestamp())));
  FOR i IN 1..n / per LOOP
    IF i % 2 = 1 OR ids IS NULL THEN
      WITH ins AS (INSERT INTO ev (t_us, note)
          SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint, 'x'
          FROM generate_series(1, per) RETURNING id)
        SELECT array_agg(id) INTO ids FROM ins;
    ELSE
      UPDATE ev SET t_us = (extract(epoch FROM clock_timestamp()) * 1000000)::bigint,
                    note = 'u' WHERE id = ANY (ids);
    END IF;
    COMMIT;
    IF rate > 0 THEN
      PERFORM pg_sleep(greatest(0, extract(epoch FROM
        t0 + make_interval(secs => i * per / rate) - clock_timestamp())));
    END IF;
  END LOOP;
END $$""", db=DB)

    def start(self, rate, n_total, sessions, per, lead=0.0):
        """sessions loaders sharing rate (0: as fast as they can); with a
        lead, all of them keep one schedule that begins lead seconds from
        now, so that the time it takes to start them is not counted as
        load time.  -> (processes, changes, epoch the schedule begins)"""
        n_per = max(per, n_total // sessions)
        start = time.time() + lead if lead else 0
        procs = [subprocess.Popen(
            ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(self.pg.port),
             "-U", "postgres", "-d", DB, "-c",
             f"CALL load({rate / sessions}, {n_per}, {per}, {start:.6f})"])
            for _ in range(sessions)]
        return procs, (n_per // per) * per * sessions, start or time.time()

    def lag(self, slot):
        v = self.pg.psql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) "
                         f"FROM pg_replication_slots WHERE slot_name = '{slot}'", db=DB)
        return int(v) if v else None

    def wal(self):
        return int(self.pg.psql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')", db=DB))


def connector_config(name, pg, slot, prefix):
    return {
        "name": name,
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": "127.0.0.1", "database.port": str(pg.port),
        "database.user": "postgres", "database.password": "postgres",
        "database.dbname": DB, "topic.prefix": prefix, "slot.name": slot,
        "plugin.name": "pgoutput", "publication.name": f"{slot}_pub",
        "publication.autocreate.mode": "filtered",
        "table.include.list": "public.ev",
        "snapshot.mode": "no_data",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        "transforms": "unwrap",
        "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState",
    }


def consumer(bootstrap, topic, start=None):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{time.time()}",
                  "enable.auto.commit": False, "log_level": 0})
    end = time.time() + 120
    while topic not in c.list_topics(timeout=5).topics:
        if time.time() > end:
            raise RuntimeError(f"no topic {topic} on {bootstrap}")
        time.sleep(0.2)
    if start is None:
        start = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    c.assign([TopicPartition(topic, 0, start)])
    return c


def high_watermark(bootstrap, topic):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "hw", "log_level": 0})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    finally:
        c.close()


def latency(load, bootstrap, topic, secs, rate=1000.0):
    c = consumer(bootstrap, topic)
    n = int(rate * secs)
    p, n, _ = load.start(rate, n, 1, 1)
    t_start = time.time()
    lat, got = [], 0
    deadline = time.time() + secs + 90
    while got < n and time.time() < deadline:
        m = c.poll(0.1)
        now = time.time()
        if m is not None and not m.error() and m.value():
            got += 1
            v = json.loads(m.value())
            if v["t_us"] / 1e6 > t_start + min(2, secs / 4):
                lat.append(now * 1000 - v["t_us"] / 1000)
    for q in p:
        q.wait()
    c.close()
    lat.sort()
    if not lat:
        return {"delivered": got, "changes": n}
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    return {"delivered": got, "changes": n, "measured": len(lat), "rate": rate,
            "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99),
            "p999_ms": pct(0.999), "max_ms": lat[-1]}


class Ages(threading.Thread):
    """a consumer at the topic's end (bench/ages.c, librdkafka with its
    defaults) that counts every change and reports, for one in SAMPLE, when
    it arrived and how old it was (arrival - the row's t_us).  It was a
    confluent-kafka-python consumer, which cost ~4 us of CPU per change
    (3.5 us taking only one age in ten): at 90k changes/s a third of a
    core taken from the system measured; the medians need no more than a
    sample"""

    SAMPLE = 10
    EXE = None  # built once per run (build_ages)

    def __init__(self, bootstrap, topic):
        super().__init__(daemon=True)
        start = high_watermark(bootstrap, topic)
        self.p = subprocess.Popen([Ages.EXE, bootstrap, topic, str(start), str(self.SAMPLE)],
                                  stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.count = 0
        self.seen = []

    def run(self):
        for line in self.p.stdout:
            if line[:1] == b"C":
                self.count = int(line[2:])
            elif line[:1] == b"A":
                t, age = line[2:].split()
                self.seen.append((float(t), float(age)))

    def stop(self):
        self.p.terminate()
        self.join()
        if self.p.wait() not in (0, -signal.SIGTERM):
            raise RuntimeError(f"bench/ages.c exited with {self.p.returncode}")


def build_ages(work):
    Ages.EXE = stacks.build_c(work, "ages", ["-lrdkafka"])


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else None


def steps(load, slot, rates, secs, roots_fn, bootstrap_fn, topic, sessions=SESSIONS,
          per=PER):
    rows = []

    def step(rate):
        time.sleep(2)
        ages = Ages(bootstrap_fn(), topic)
        ages.start()
        w0 = load.wal()
        m = Meter(roots_fn).start()
        p, n, t0 = load.start(rate, int(rate * secs), sessions, per, lead=2.0)
        samples, next_sample = [], t0
        # the slot's lag once a second; the loaders' end to 50 ms, since
        # it times the committed rate
        while any(q.poll() is None for q in p):
            if time.time() >= next_sample:
                samples.append((time.time() - t0, load.lag(slot)))
                next_sample += 1
            time.sleep(0.05)
        t1 = time.time()
        meter = m.stop()
        w1 = load.wal()
        drain = None
        while time.time() - t1 < 30:
            if ages.count >= n:
                drain = time.time() - t1
                break
            time.sleep(0.1)
        ages.stop()
        seen = list(ages.seen)
        early = median([a for t, a in seen if t0 + 1 <= t < t0 + 6])
        late = median([a for t, a in seen if t1 - 5 <= t < t1])
        ys = [s[1] or 0 for s in samples]
        walrate = (w1 - w0) / (t1 - t0)
        grows = early is None or late is None or late > 2 * early + 0.5
        flat = drain is not None and not grows
        short = n / (t1 - t0) < 0.9 * rate
        r = {"target": rate, "committed": n / (t1 - t0), "short": short,
             "sessions": sessions, "wal_kib_s": walrate / 1024,
             "age_first_5s_ms": None if early is None else early * 1000,
             "age_last_5s_ms": None if late is None else late * 1000,
             "lag_first_kib": max(ys[:5]) / 1024, "lag_last_kib": max(ys[-5:]) / 1024,
             "delivered": ages.count, "changes": n,
             "drain_s": drain, "flat": flat,
             "stack_cpu_s": meter["stack_cpu_s"], "other_cpu_pct": meter["other_cpu_pct"],
             "load": meter["load"]}
        rows.append(r)
        log(f"  {slot} {rate:.0f}/s: committed {r['committed']:.0f}/s, record age "
            f"{r['age_first_5s_ms']} -> {r['age_last_5s_ms']} ms, slot lag "
            f"{r['lag_first_kib']:.0f}->{r['lag_last_kib']:.0f} KiB, all delivered "
            f"{drain} s after the load, flat {flat}"
            + (", loaders short of the target" if short else ""))
        return r

    ok = failed = None
    for rate in rates:
        r = step(rate)
        if not r["flat"]:
            failed = rate
            break
        ok = rate
        # saturated: short of the target and hardly more than the step before
        if r["short"] and len(rows) > 1 and r["committed"] < 1.1 * rows[-2]["committed"]:
            break
    # Between the last target sustained and the first one not, REFINE
    # more steps halve the gap (the coarse steps are 20-50% apart).
    for _ in range(REFINE if ok is not None and failed is not None else 0):
        rate = (ok + failed) / 2
        if step(rate)["flat"]:
            ok = rate
        else:
            failed = rate
    sustained = [r["committed"] for r in rows if r["flat"]]
    return {"steps": rows, "sustained": max(sustained) if sustained else 0,
            "limited_by_loaders": failed is None and bool(sustained)}


def catchup(load, n, stop_fn, start_fn, bootstrap_fn, topic, perf_fn=None):
    """commit n changes while the capturer is stopped, then time how fast
    it delivers them once started again; perf_fn() -> (Perf, path) profiles
    the drain"""
    hw = high_watermark(bootstrap_fn(), topic)
    stop_fn()
    t0 = time.time()
    p, n, _ = load.start(0, n, SESSIONS, PER)
    for q in p:
        q.wait()
    load_s = time.time() - t0
    t_start = time.time()
    start_fn()
    perf = perf_fn() if perf_fn else None
    c = consumer(bootstrap_fn(), topic, hw)
    got, first, last = 0, None, None
    deadline = time.time() + 300
    while got < n and time.time() < deadline:
        msgs = c.consume(10000, 0.05)
        now = time.time()
        for m in msgs:
            if not m.error():
                got += 1
        if msgs and first is None:
            first = now
        if msgs:
            last = now
    c.close()
    if perf:
        perf[0].stop(perf[1], f"samsa and its Postgres draining a CDC backlog of {n} "
                     f"changes: {got / max(1e-3, (last or 0) - (first or 0)):.0f} changes/s")
    if got < n:
        return {"changes": n, "delivered": got, "rate": None}
    return {"changes": n, "delivered": got, "load_s": load_s,
            "restart_to_first_s": first - t_start, "drain_s": last - first,
            "rate": n / max(1e-3, last - first)}


def recvlogical(pg, load, n):
    pg.psql("CREATE PUBLICATION recv_pub FOR TABLE ev", db=DB)
    pg.psql("SELECT pg_create_logical_replication_slot('recv', 'pgoutput')", db=DB)
    p, n, _ = load.start(0, n, SESSIONS, PER)
    for q in p:
        q.wait()
    end = pg.psql("SELECT pg_current_wal_lsn()", db=DB)
    t0 = time.time()
    r = subprocess.run(
        ["pg_recvlogical", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres",
         "-d", DB, "--slot", "recv", "--start", "--endpos", end, "--no-loop",
         "-o", "proto_version=1", "-o", "publication_names=recv_pub", "-f", "/dev/null"],
        capture_output=True, text=True)
    dt = time.time() - t0
    pg.psql("SELECT pg_drop_replication_slot('recv')", db=DB)
    if r.returncode != 0:
        raise RuntimeError(f"pg_recvlogical: {r.stderr}")
    return {"changes": n, "seconds": dt, "rate": n / dt}


def run(RES, WORK, SAMSA_BIN, QUICK, save):
    secs = 5 if QUICK else 20
    rates = [float(x) for x in os.environ.get(
        "BENCH_CDC_RATES", "4000 16000 40000" if QUICK else
        "2000 5000 7500 10000 15000 20000 25000 30000 40000 60000 80000 100000 "
        "120000 150000").split()]
    backlog = 20000 if QUICK else 200000
    res = RES.setdefault("cdc", {})
    res["settings"] = {"seconds": secs, "rates": rates, "backlog": backlog,
                       "latency_rate": 1000, "sessions": SESSIONS, "rows_per_txn": PER}
    build_ages(WORK)
    pg = PgStack(os.path.join(WORK, "cdc"), SAMSA_BIN)
    load = Load(pg)
    pg.pg_start()
    k = conn = None
    try:
        load.setup()
        # -- samsa
        log("cdc: samsa")
        pg.samsa_start()
        cfg = connector_config("bench", pg, "samsa_slot", "samsa")
        name = cfg.pop("name")
        st, body = stacks.http(pg.connect_url + "/connectors", {"name": name, "config": cfg})
        if st >= 300:
            raise RuntimeError(f"samsa declined the connector: {st} {body}")
        topic = "samsa.public.ev"
        load.pg.psql("INSERT INTO ev (t_us, note) VALUES (0, 'warm-up')", db=DB)
        consumer(pg.bootstrap, topic, 0).close()
        r = res.setdefault("samsa", {})
        r["latency"] = latency(load, pg.bootstrap, topic, secs)
        log(f"  samsa latency {r['latency']}")
        save(RES)
        r["rate"] = steps(load, "samsa_slot", rates, secs, pg.roots,
                          lambda: pg.bootstrap, topic)
        save(RES)
        # the profile goes beside the results file (bench/results/ by default)
        profile = os.path.join(os.path.dirname(os.environ.get("BENCH_RESULTS_FILE") or
                                               os.path.join(stacks.ROOT, "bench", "results",
                                                            "results.json")),
                               "profile-samsa-cdc.txt")
        r["catchup"] = catchup(
            load, backlog, pg.samsa_stop, pg.samsa_start, lambda: pg.bootstrap, topic,
            lambda: (stacks.Perf(os.path.join(WORK, "perf-cdc.data")).start(
                stacks.tree(pg.roots())), profile))
        log(f"  samsa catch-up {r['catchup']}")
        save(RES)
        stacks.http(pg.connect_url + "/connectors/bench", method="DELETE")
        pg.samsa_stop()
        time.sleep(1)
        pg.psql("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE slot_name = 'samsa_slot' AND NOT active", db=DB)

        # -- Debezium on Connect standalone, to Apache Kafka
        log("cdc: debezium")
        k = KafkaStack(os.path.join(WORK, "cdc-kafka"))
        k.format()
        k.start()
        k.wait()
        cfg = connector_config("dbz", pg, "dbz_slot", "dbz")
        conn = ConnectStack(os.path.join(WORK, "cdc-connect"), k.bootstrap, cfg,
                            {"offset.flush.interval.ms": "1000"})
        conn.start()
        topic = "dbz.public.ev"
        end = time.time() + 120
        while load.lag("dbz_slot") is None:
            if time.time() > end or conn.proc.poll() is not None:
                raise RuntimeError("Debezium made no slot (see cdc-connect/connect.log)")
            time.sleep(0.5)
        load.pg.psql("INSERT INTO ev (t_us, note) VALUES (0, 'warm-up')", db=DB)
        consumer(k.bootstrap, topic, 0).close()
        roots = lambda: k.roots() + conn.roots()
        r = res.setdefault("debezium", {})
        r["settings"] = {"poll.interval.ms": "500 (default)",
                         "max.batch.size": "2048 (default)",
                         "offset.flush.interval.ms": 1000}
        r["latency"] = latency(load, k.bootstrap, topic, secs)
        log(f"  debezium latency {r['latency']}")
        save(RES)
        r["rate"] = steps(load, "dbz_slot", rates, secs, roots,
                          lambda: k.bootstrap, topic)
        save(RES)
        r["catchup"] = catchup(load, backlog, conn.stop, conn.start,
                               lambda: k.bootstrap, topic)
        log(f"  debezium catch-up {r['catchup']}")
        save(RES)
        conn.stop()
        k.stop()
        time.sleep(1)
        pg.psql("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE slot_name = 'dbz_slot' AND NOT active", db=DB)

        # -- the ceiling
        log("cdc: pg_recvlogical")
        res["pg_recvlogical"] = recvlogical(pg, load, backlog)
        log(f"  pg_recvlogical {res['pg_recvlogical']}")
        res["load_at_end"] = loadavg()
        save(RES)
    finally:
        if conn:
            conn.stop()
        if k:
            k.stop()
        pg.stop()
