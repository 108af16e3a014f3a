"""samsa side by side with Apache Kafka (and Debezium): the driver of
`make bench` (bench/run.sh runs it with the interop venv's Python).

Parts (BENCH_PARTS, default all: "produce cdc sink"):
  produce   ProducerPerformance / ConsumerPerformance (kafka-tools) against
            Kafka 4.x and against samsa: capacity, latency at a fixed rate,
            CPU s/GB, peak memory; and the footprint (start to the first
            acknowledged produce, idle memory) of each stack.
  cdc       bench/cdc.py: samsa's table topics against Debezium's Postgres
            connector on Connect standalone, and pg_recvlogical.
  sink      bench/sink.py: samsa's sink, Debezium's JDBC sink, bench/upsert.c.
Each part adds its results to bench/results/results.json; bench/report.py
turns that into bench/results/README.md and PNG charts.

BENCH_QUICK=1 runs each measurement about a tenth as long (a smoke run).
"""

import json
import os
import re
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stacks  # noqa: E402
from stacks import (KafkaStack, Meter, PgStack, run_java, status_kb,  # noqa: E402
                    pss_kb, loadavg)

ROOT = stacks.ROOT
RESULTS = os.path.join(ROOT, "bench", "results")
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
WORK = os.environ.get("BENCH_WORK") or f"/tmp/samsa-bench.{os.getpid()}"
SAMSA_BIN = os.environ.get("SAMSA_BIN", os.path.join(ROOT, "samsa"))

# what both brokers' producers use, set explicitly (Kafka 4.x's defaults)
PRODUCER = {"batch.size": "16384", "linger.ms": "5", "compression.type": "none"}
SIZES = [100, 1024]
ACKS = ["1", "all"]
# bytes per capacity run: ~150 MB at 100 B, ~300 MB at 1 KiB
RECORDS = {100: 1_500_000, 1024: 300_000}
LAT_SECONDS = 15
if QUICK:
    RECORDS = {100: 150_000, 1024: 30_000}
    LAT_SECONDS = 4


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


RUN = time.strftime("%Y-%m-%d %H:%M:%S")  # this run, in results.json
RESULTS_FILE = os.environ.get("BENCH_RESULTS_FILE") or os.path.join(RESULTS, "results.json")


def load_results():
    p = RESULTS_FILE
    if os.path.exists(p) and os.environ.get("BENCH_KEEP", ""):
        return json.load(open(p))
    return {}


def save_results(res):
    os.makedirs(RESULTS, exist_ok=True)
    with open(RESULTS_FILE, "w") as f:
        json.dump(res, f, indent=1, sort_keys=True)


def create_topic(bootstrap, name, config=None):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": bootstrap})
    fs = a.create_topics([NewTopic(name, 1, 1, config=config or {})],
                         operation_timeout=30)
    for f in fs.values():
        f.result(60)


def first_produce(bootstrap, t0, timeout=180):
    """seconds from t0 to the first produce acknowledged with acks=all
    (the topic auto-created); the client is made before the broker starts"""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                  "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 50,
                  "retry.backoff.ms": 20, "retry.backoff.max.ms": 50,
                  "topic.metadata.refresh.interval.ms": 100,
                  "message.timeout.ms": 2000, "log_level": 0})
    done = []
    end = time.time() + timeout
    while not done and time.time() < end:
        p.produce("first", b"x", on_delivery=lambda e, m: done.append(
            time.time()) if e is None else None)
        p.flush(2.5)
    if not done:
        raise RuntimeError(f"no produce acknowledged by {bootstrap}")
    return done[0] - t0


# ---------------------------------------------------------------- parsing

PP = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), "
                r"([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, "
                r"(\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")


def producer_perf(bootstrap, topic, n, size, acks, rate=-1):
    props = dict(PRODUCER, **{"bootstrap.servers": bootstrap, "acks": acks})
    if acks != "all":
        props["enable.idempotence"] = "false"
    out, err, cpu = run_java(
        "org.apache.kafka.tools.ProducerPerformance",
        ["--topic", topic, "--num-records", str(n), "--record-size", str(size),
         "--throughput", str(int(rate))] + ["--producer-props"] +
        [f"{k}={v}" for k, v in props.items()])
    m = PP.search(out.strip().split("\n")[-1])
    if not m:
        raise RuntimeError(f"ProducerPerformance said: {out[-500:]} {err[-500:]}")
    sent, rps = int(m[1]), float(m[2])
    return {"records": sent, "rec_s": rps, "mb_s": rps * size / 1e6,
            "avg_ms": float(m[4]), "max_ms": float(m[5]), "p50_ms": int(m[6]),
            "p95_ms": int(m[7]), "p99_ms": int(m[8]), "p999_ms": int(m[9]),
            "raw": out.strip().split("\n")[-1]}, cpu


def consumer_perf(bootstrap, topic, n):
    out, err, cpu = run_java(
        "org.apache.kafka.tools.ConsumerPerformance",
        ["--bootstrap-server", bootstrap, "--topic", topic, "--messages", str(n),
         "--timeout", "60000"])
    line = out.strip().split("\n")[-1]
    f = [x.strip() for x in line.split(",")]
    # start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg,
    # nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
    if len(f) < 10:
        raise RuntimeError(f"ConsumerPerformance said: {out[-500:]} {err[-500:]}")
    got = int(f[4])
    if got < n:
        raise RuntimeError(f"ConsumerPerformance read {got} of {n}")
    return {"records": got, "rec_s": float(f[9]), "fetch_ms": float(f[7]),
            "rebalance_ms": float(f[6]), "overall_rec_s": float(f[5]),
            "raw": line}, cpu


# ---------------------------------------------------------------- produce part

def keep_best(runs, key, r):
    """runs[key] = r, or the faster of r and the run already there; every
    run's records/s stays listed in runs_rec_s"""
    old = runs.get(key)
    if old and old.get("run") != RUN:
        old = None  # from an earlier `make bench` (BENCH_KEEP)
    r["run"] = RUN
    seen = (old or {}).get("runs_rec_s", []) + [r["rec_s"]]
    if old and old["rec_s"] >= r["rec_s"]:
        r = old
    r["runs_rec_s"] = seen
    runs[key] = r


def aftermath(stack, r):
    """What a run leaves its stack to do (a Postgres checkpoint or
    autovacuum, the JVM's collector) is the run's: the stack's CPU until
    the machine is idle again (at most 30 s) goes into r["after_cpu_s"]."""
    cpu0 = stacks.cpu_seconds(stack.roots())
    r["after_s"] = stacks.settle()
    r["after_cpu_s"] = stacks.cpu_seconds(stack.roots()) - cpu0


def measured(stack, payload_bytes, run):
    """run() -> (result, client CPU s), started on an idle machine, with
    the stack's CPU over it and after it, per GB of payload"""
    settled = stacks.settle()
    m = Meter(stack.roots).start()
    r, cpu = run()
    r.update(m.stop(cpu))
    aftermath(stack, r)
    r["cpu_s_per_gb"] = (r["stack_cpu_s"] + r["after_cpu_s"]) / (payload_bytes / 1e9)
    r["settle_s"] = settled
    return r


def one_produce(stack, res, label, size, acks, topic_cfg=None, rate=-1):
    """one ProducerPerformance run on a fresh topic; returns the topic"""
    kind = "produce" if rate < 0 else "latency"
    topic = f"{kind[0]}{size}-a{acks}-{label}-{int(time.time() * 1000)}"
    create_topic(stack.bootstrap, topic, topic_cfg)
    n = RECORDS[size] if rate < 0 else int(rate * LAT_SECONDS)
    r = measured(stack, n * size,
                 lambda: producer_perf(stack.bootstrap, topic, n, size, acks, rate))
    if rate >= 0:
        r["target_rec_s"] = rate
    keep_best(res.setdefault(label, {}), f"{kind} {size} acks={acks}", r)
    log(f"{label} {kind} {size} B acks={acks}: {r['rec_s']:.0f} rec/s {r['mb_s']:.1f} MB/s, "
        f"p50 {r['p50_ms']} p99 {r['p99_ms']} ms, {r['cpu_s_per_gb']:.1f} CPU s/GB, "
        f"load {r['load']}, others {r['other_cpu_pct']:.0f}%, after it {r['after_cpu_s']:.1f} CPU s "
        f"in {r['after_s']:.0f} s")
    save_results(RES)
    return topic


def one_consume(stack, res, label, size, topic):
    n = RECORDS[size]
    c = measured(stack, n * size, lambda: consumer_perf(stack.bootstrap, topic, n))
    c["mb_s"] = c["rec_s"] * size / 1e6
    keep_best(res.setdefault(label, {}), f"consume {size}", c)
    log(f"{label} consume {size} B: {c['rec_s']:.0f} rec/s (fetch), load {c['load']}, "
        f"{c['cpu_s_per_gb']:.1f} CPU s/GB, after it {c['after_cpu_s']:.1f} CPU s in "
        f"{c['after_s']:.0f} s")
    save_results(RES)


def part_produce():
    """Both stacks are up together (the one not measured idles) and the
    runs alternate between them, pair by pair and in alternating order, so
    that the other load on this shared machine falls on both alike."""
    res = RES.setdefault("produce", {})
    fp = RES.setdefault("footprint", {})
    k = KafkaStack(os.path.join(WORK, "kafka"))
    s = PgStack(os.path.join(WORK, "samsa"), SAMSA_BIN)
    try:
        k.format()
        t0 = time.time()
        k.start()
        fp["kafka"] = {"start_to_first_produce_s": first_produce(k.bootstrap, t0)}
        time.sleep(10)
        fp["kafka"]["idle_rss_mb"] = status_kb(k.proc.pid, "VmRSS") / 1024
        fp["kafka"]["idle_pss_mb"] = pss_kb(k.roots()) / 1024
        fp["kafka"]["load"] = loadavg()
        log(f"kafka footprint: {fp['kafka']}")
        # fresh cluster (initdb) first, then timed: Postgres start + samsa
        # start (migrations on a fresh database) + first acknowledged produce
        s.pg_start()
        s.pg_stop()
        t0 = time.time()
        s.pg_start()
        t_pg = time.time() - t0
        s.samsa_start()
        fp["samsa"] = {"start_to_first_produce_s": first_produce(s.bootstrap, t0),
                       "postgres_start_s": t_pg}
        time.sleep(10)
        fp["samsa"]["idle_rss_mb"] = status_kb(s.samsa.pid, "VmRSS") / 1024
        fp["samsa"]["idle_pss_mb"] = pss_kb(s.roots()) / 1024
        fp["samsa"]["samsa_idle_pss_mb"] = pss_kb([s.samsa.pid]) / 1024
        fp["samsa"]["load"] = loadavg()
        log(f"samsa footprint: {fp['samsa']}")

        # One untimed run on each first, so that neither is measured cold
        # (the Kafka JVM's JIT, both stacks' caches).
        for st in (k, s):
            warm = f"warmup-{int(time.time() * 1000)}"
            create_topic(st.bootstrap, warm)
            producer_perf(st.bootstrap, warm, RECORDS[1024] // 2, 1024, "1")
        log("warm-up done")

        flip = False
        for size in SIZES:
            for acks in ACKS:
                order = [("kafka", k, None), ("samsa", s, None),
                         ("kafka-flush", k, {"flush.messages": "1"})]
                if flip:
                    order = order[::-1]
                flip = not flip
                topics = {}
                for label, st, cfg in order:
                    topics[label] = one_produce(st, res, label, size, acks, cfg)
                if acks == "1":
                    for label, st in (("kafka", k), ("samsa", s))[::(-1 if flip else 1)]:
                        one_consume(st, res, label, size, topics[label])
        # Each capacity run at the defaults twice more, the order flipping
        # each time: the tables keep the fastest of the three for each
        # system (a run can be slowed by other work on a shared machine by
        # a third, either system's).
        for _ in range(2):
            for size in SIZES:
                for acks in ACKS:
                    pair = [("kafka", k), ("samsa", s)]
                    if flip:
                        pair = pair[::-1]
                    flip = not flip
                    for label, st in pair:
                        topic = one_produce(st, res, label, size, acks)
                        if acks == "1":
                            one_consume(st, res, label, size, topic)
        rates = {(sz, a): res["kafka"][f"produce {sz} acks={a}"]["rec_s"] / 2
                 for sz in SIZES for a in ACKS}
        RES["latency_rates"] = {f"{sz} acks={a}": r for (sz, a), r in rates.items()}
        for (size, acks), rate in rates.items():
            pair = [("kafka", k), ("samsa", s)]
            if flip:
                pair = pair[::-1]
            flip = not flip
            for label, st in pair:
                one_produce(st, res, label, size, acks, rate=rate)
        res["kafka"]["broker_hwm_mb"] = status_kb(k.proc.pid, "VmHWM") / 1024
        res["samsa"]["broker_hwm_mb"] = status_kb(s.samsa.pid, "VmHWM") / 1024
        k.stop()
        profile(s)
    finally:
        k.stop()
        s.stop()


def profile(stack, size=1024, acks="all"):
    """perf record (cpu-clock) of samsa and its Postgres processes over one
    more samsa produce run; bench/results/profile-samsa-produce.txt"""
    topic = f"prof-{int(time.time())}"
    create_topic(stack.bootstrap, topic)
    perf = stacks.Perf(os.path.join(WORK, "perf.data")).start(
        stacks.tree(stack.roots()))
    r = {"rec_s": 0}
    try:
        r, _ = producer_perf(stack.bootstrap, topic, RECORDS[size], size, acks)
    finally:
        perf.stop(os.path.join(RESULTS, "profile-samsa-produce.txt"),
                  f"samsa and its Postgres during ProducerPerformance {RECORDS[size]} x "
                  f"{size} B acks={acks}: {r['rec_s']:.0f} rec/s")
    log("profile written")


RES = {}


def main():
    global RES
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    RES = load_results()
    parts = os.environ.get("BENCH_PARTS", "produce cdc sink").split()
    RES.setdefault("meta", {}).update({
        "date": time.strftime("%F %T UTC", time.gmtime()), "quick": QUICK,
        "cores": os.cpu_count(),
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        "load_at_start": open("/proc/loadavg").read().strip(),
        "samsa_bin": SAMSA_BIN})
    os.makedirs(WORK, exist_ok=True)
    os.chmod(WORK, 0o755)
    for part in parts:
        t0 = time.time()
        log(f"== part {part}")
        if part == "produce":
            part_produce()
        elif part == "profile":
            s = PgStack(os.path.join(WORK, "profile"), SAMSA_BIN)
            try:
                s.pg_start()
                s.samsa_start()
                profile(s)
            finally:
                s.stop()
        elif part == "cdc":
            import cdc
            cdc.run(RES, WORK, SAMSA_BIN, QUICK, save_results)
        elif part == "sink":
            import sink
            sink.run(RES, WORK, SAMSA_BIN, QUICK, save_results)
        else:
            raise SystemExit(f"bench: unknown part {part}")
        RES.setdefault("meta", {})[f"{part}_minutes"] = (time.time() - t0) / 60
        save_results(RES)
    RES["meta"]["load_at_end"] = open("/proc/loadavg").read().strip()
    save_results(RES)


if __name__ == "__main__":
    try:
        main()
    finally:
        if not os.environ.get("BENCH_KEEP_WORK"):
            shutil.rmtree(WORK, ignore_errors=True)
