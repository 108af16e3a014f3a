"""bench/results/results.json -> bench/results/README.md (tables of raw
numbers and ratios) and PNG charts.  Nothing here measures: it only
formats what bench.py recorded, and says where a target is missed."""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")


def f0(x):
    return "-" if x is None else f"{x:,.0f}"


def f1(x):
    return "-" if x is None else f"{x:,.1f}"


def ratio(a, b):
    return "-" if not a or not b else f"{a / b:.2f}x"


def g(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def produce_section(R, out, charts):
    P = R.get("produce")
    if not P or "kafka" not in P or "samsa" not in P:
        return
    K, S, KF = P["kafka"], P["samsa"], P.get("kafka-flush", {})
    out.append("## 1. Produce and consume (Kafka's ProducerPerformance / ConsumerPerformance)\n")
    out.append("One partition; both producers with batch.size=16384, linger.ms=5, "
               "compression.type=none (Kafka 4.x's defaults, set explicitly); "
               "acks=1 runs with enable.idempotence=false, acks=all with the "
               "default (idempotent). MB/s = records/s x record size / 10^6. "
               "Consume is ConsumerPerformance's fetch rate (its own "
               "fetch.nMsg.sec: the group join is not counted) over the acks=1 "
               "topic. CPU s/GB: CPU seconds of the whole broker stack (the Kafka "
               "JVM; samsa plus every Postgres process) per 10^9 bytes of record "
               "payload, over the run and what it left the stack to do until the "
               "machine was idle again (at most 30 s: a Postgres checkpoint or "
               "autovacuum, the JVM's collector); each run starts on an idle "
               "machine. \"other CPU\" is what the rest of the machine (the "
               "client JVM excluded) used meanwhile, in % of one core. Every "
               "capacity run at the defaults (and its consume) ran three times, "
               "the order flipping each round; a row shows each system's "
               "fastest run, and \"runs\" lists all three.\n")
    out.append("### At each system's defaults (Kafka: no fsync, page cache; "
               "samsa: synchronous_commit=on, fsync=on)\n")
    out.append("| run | Kafka rec/s | Kafka MB/s | samsa rec/s | samsa MB/s | "
               "**samsa / Kafka** | runs rec/s Kafka / samsa | Kafka CPU s/GB | "
               "samsa CPU s/GB | load Kafka / samsa | other CPU % Kafka / samsa |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    runs = lambda r: ", ".join(f0(x) for x in r.get("runs_rec_s", [r["rec_s"]]))
    names = [k for k in S if k.startswith("produce") or k.startswith("consume")]
    order = sorted(names, key=lambda n: (n.split()[0] != "produce", int(n.split()[1]), n))
    bars = []
    for n in order:
        k, s = K.get(n), S.get(n)
        if not k or not s:
            continue
        out.append(f"| {n} | {f0(k['rec_s'])} | {f1(k['mb_s'])} | {f0(s['rec_s'])} | "
                   f"{f1(s['mb_s'])} | **{ratio(s['rec_s'], k['rec_s'])}** | "
                   f"{runs(k)} / {runs(s)} | "
                   f"{f1(k.get('cpu_s_per_gb'))} | {f1(s.get('cpu_s_per_gb'))} | "
                   f"{k['load']} / {s['load']} | {f0(k['other_cpu_pct'])} / "
                   f"{f0(s['other_cpu_pct'])} |")
        bars.append((n, k["rec_s"], s["rec_s"], None))
    out.append("")
    if KF:
        out.append("### At equal durability (Kafka with flush.messages=1, an fsync "
                   "per message; samsa as above, synchronous_commit=on)\n")
        out.append("| run | Kafka (flush) rec/s | Kafka (flush) MB/s | samsa rec/s | "
                   "samsa MB/s | **samsa / Kafka** | Kafka CPU s/GB | load Kafka | "
                   "other CPU % Kafka |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for n in order:
            k, s = KF.get(n), S.get(n)
            if not k or not s:
                continue
            out.append(f"| {n} | {f0(k['rec_s'])} | {f1(k['mb_s'])} | {f0(s['rec_s'])} | "
                       f"{f1(s['mb_s'])} | **{ratio(s['rec_s'], k['rec_s'])}** | "
                       f"{f1(k.get('cpu_s_per_gb'))} | {k['load']} | "
                       f"{f0(k['other_cpu_pct'])} |")
            for i, b in enumerate(bars):
                if b[0] == n:
                    bars[i] = (n, b[1], b[2], k["rec_s"])
        out.append("")
    lat = [k for k in S if k.startswith("latency")]
    if lat:
        out.append("### Produce latency at a fixed rate (half of Kafka's capacity "
                   "above, at its defaults)\n")
        out.append("ProducerPerformance's own percentiles (send to acknowledgement, "
                   "including time queued in the producer).\n")
        out.append("| run | rate rec/s | Kafka p50 / p99 ms | samsa p50 / p99 ms | "
                   "samsa achieved rec/s | load Kafka / samsa |")
        out.append("|---|---|---|---|---|---|")
        for n in sorted(lat):
            k, s = K.get(n), S.get(n)
            if not k or not s:
                continue
            out.append(f"| {n[8:]} | {f0(k['target_rec_s'])} | {k['p50_ms']} / {k['p99_ms']} | "
                       f"{s['p50_ms']} / {s['p99_ms']} | {f0(s['rec_s'])} | "
                       f"{k['load']} / {s['load']} |")
        out.append("")
    out.append("### Memory\n")
    out.append(f"Peak RSS (VmHWM) over the produce and consume runs: Kafka JVM "
               f"{f0(K.get('broker_hwm_mb'))} MB (heap -Xms1G -Xmx1G as "
               f"kafka-server-start.sh sets it); samsa {f1(S.get('broker_hwm_mb'))} MB. "
               f"Whole samsa stack (samsa + Postgres, sampled sum of Pss, shared "
               f"buffers counted once): peak "
               f"{f0(max((v.get('peak_pss_mb', 0) for v in S.values() if isinstance(v, dict)), default=None))} MB.\n")
    charts.append(("produce", bars))


def footprint_section(R, out):
    F = R.get("footprint")
    if not F or "kafka" not in F or "samsa" not in F:
        return
    k, s = F["kafka"], F["samsa"]
    out.append("## 4. Footprint\n")
    out.append("Start: from launching the server(s) on freshly formatted storage "
               "(kafka-storage format; initdb) to the first produce acknowledged "
               "with acks=all (a confluent-kafka producer made beforehand, the "
               "topic auto-created). samsa's figure includes starting Postgres "
               "and samsa's migrations on an empty database. Idle memory 10 s "
               "later: Pss summed over the stack's processes.\n")
    out.append("| | Kafka | samsa + Postgres | samsa / Kafka |")
    out.append("|---|---|---|---|")
    out.append(f"| start to first produce | {k['start_to_first_produce_s']:.2f} s | "
               f"{s['start_to_first_produce_s']:.2f} s (Postgres start "
               f"{s['postgres_start_s']:.2f} s) | "
               f"{ratio(s['start_to_first_produce_s'], k['start_to_first_produce_s'])} |")
    out.append(f"| idle memory (Pss) | {f0(k['idle_pss_mb'])} MB | {f0(s['idle_pss_mb'])} MB "
               f"(samsa alone {f1(s['samsa_idle_pss_mb'])} MB) | "
               f"{ratio(s['idle_pss_mb'], k['idle_pss_mb'])} |")
    out.append(f"| idle RSS of the broker process | {f0(k['idle_rss_mb'])} MB | "
               f"{f1(s['idle_rss_mb'])} MB | {ratio(s['idle_rss_mb'], k['idle_rss_mb'])} |")
    out.append(f"| load average then | {k['load']} | {s['load']} | |\n")


def cdc_section(R, out, charts):
    C = R.get("cdc")
    if not C:
        return
    S, D, pr = C.get("samsa", {}), C.get("debezium", {}), C.get("pg_recvlogical", {})
    st = C.get("settings", {})
    out.append("## 2. Change data capture (one Postgres, the same insert/update load)\n")
    out.append("samsa's table topics against Debezium 3.6.1's Postgres connector on "
               "Kafka Connect standalone 4.3.1 writing to the Apache Kafka above; "
               "the same connector config for both (pgoutput, no snapshot, "
               "ExtractNewRecordState, JSON values without schemas). Half the "
               "changes are inserts, half updates. Latency: 1,000 changes/s in "
               "one-row transactions, from just before COMMIT to the record in a "
               "confluent-kafka consumer. Sustained: stepped rates "
               f"({', '.join(f0(x) for x in st.get('rates', []))} changes/s, then "
               "two steps halving the gap between the last sustained and the first not, "
               f"{st.get('rows_per_txn', 10)} rows per transaction, {st.get('sessions', 8)} "
               f"sessions, {st.get('seconds')} s each), the "
               "highest at which the consumer's lag (the age of arriving changes) did "
               "not grow and every change arrived within 30 s of the load's end; the "
               "loaders share the 2 cores, so the top step may be their limit. "
               f"Catch-up: {f0(st.get('backlog'))} changes committed while the "
               "capturer was stopped, then the rate it delivers them at once "
               "started (first to last record at the consumer); pg_recvlogical "
               "drains the same kind of backlog to /dev/null: the ceiling the "
               "issue names, timed from its launch to its exit (connecting and "
               "starting the slot included, which the capturers' first-to-last "
               "timing leaves out), so a capturer can beat it. See "
               "bench/cdc.py for the exact criteria.\n")
    out.append("| | samsa | Debezium | **samsa / Debezium** |")
    out.append("|---|---|---|---|")
    sl, dl = S.get("latency", {}), D.get("latency", {})
    for p in ("p50_ms", "p99_ms"):
        out.append(f"| commit-to-consumer {p[:-3]} | {f1(sl.get(p))} ms | {f1(dl.get(p))} ms | "
                   f"**{ratio(sl.get(p), dl.get(p))}** |")
    ss, ds = g(S, "rate", "sustained"), g(D, "rate", "sustained")
    note = lambda x: " (loaders' limit: every step sustained)" if g(x, "rate", "limited_by_loaders") else ""
    out.append(f"| highest sustained rate, changes/s | {f0(ss)}{note(S)} | {f0(ds)}{note(D)} | "
               f"**{ratio(ss, ds)}** |")
    sc, dc = g(S, "catchup", "rate"), g(D, "catchup", "rate")
    out.append(f"| catch-up rate, changes/s | {f0(sc)} | {f0(dc)} | **{ratio(sc, dc)}** |")
    out.append(f"| catch-up / pg_recvlogical ({f0(pr.get('rate'))} changes/s) | "
               f"{ratio(sc, pr.get('rate'))} | {ratio(dc, pr.get('rate'))} | |")
    out.append(f"| restart to first record | {f1(g(S, 'catchup', 'restart_to_first_s'))} s | "
               f"{f1(g(D, 'catchup', 'restart_to_first_s'))} s | |\n")
    for name, X in (("samsa", S), ("Debezium", D)):
        rows = g(X, "rate", "steps") or []
        if not rows:
            continue
        out.append(f"{name}, stepped rates:\n")
        out.append("| target/s | committed/s | WAL KiB/s | record age s 1-6 / last 5 s ms | "
                   "slot lag first 5 s / last 5 s KiB | all delivered after | sustained | "
                   "stack CPU s | other CPU % | load |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            out.append(f"| {f0(r['target'])} | {f0(r['committed'])} | {f0(r['wal_kib_s'])} | "
                       f"{f0(r.get('age_first_5s_ms'))} / {f0(r.get('age_last_5s_ms'))} | "
                       f"{f0(r['lag_first_kib'])} / {f0(r['lag_last_kib'])} | "
                       f"{'%.1f s' % r['drain_s'] if r['drain_s'] is not None else '>30 s'} | "
                       f"{'yes' if r['flat'] else 'no'} | {f1(r['stack_cpu_s'])} | "
                       f"{f0(r['other_cpu_pct'])} | {r['load']} |")
        out.append("")
    charts.append(("cdc", {"latency": (sl, dl), "rates": (ss, ds, sc, dc, pr.get("rate"))}))


def sink_section(R, out, charts):
    K = R.get("sink")
    if not K:
        return
    pl, s, d = K.get("plain", {}), K.get("samsa", {}), K.get("debezium", {})
    st = K.get("settings", {})
    out.append("## 3. Sink: rows/s upserted into a keyed table\n")
    out.append(f"{f0(st.get('rows'))} records over {f0(st.get('distinct_keys'))} keys (half "
               f"inserts, half conflicts), batch.size {st.get('batch.size')} for all; "
               "the connectors read the records (JSON with schemas) from a topic "
               "filled beforehand, timed from the first row seen in the table to "
               "the last; bench/upsert.c writes the same rows with libpq, "
               "INSERT ... SELECT unnest(...) ON CONFLICT DO UPDATE, one "
               "transaction per batch.\n")
    out.append("| | rows/s | / plain upsert | note |")
    out.append("|---|---|---|---|")
    out.append(f"| plain libpq upsert (bench/upsert.c) | {f0(pl.get('rows_s'))} | 1.00x | load {pl.get('load', '-')} |")
    out.append(f"| samsa sink | {f0(s.get('rows_s'))} | {ratio(s.get('rows_s'), pl.get('rows_s'))} | "
               f"{s.get('error', 'load ' + str(s.get('load', '-')))} |")
    out.append(f"| Kafka + Debezium JDBC sink | {f0(d.get('rows_s'))} | "
               f"{ratio(d.get('rows_s'), pl.get('rows_s'))} | "
               f"{d.get('error', 'load ' + str(d.get('load', '-')))}; Connect start to first row "
               f"{f1(d.get('start_to_first_row_s'))} s |\n")
    charts.append(("sink", (pl.get("rows_s"), s.get("rows_s"), d.get("rows_s"))))


def targets(R, out):
    out.append("## Targets\n")
    P = R.get("produce", {})
    K, S = P.get("kafka", {}), P.get("samsa", {})
    lines = []
    for n in sorted(S):
        if (n.startswith("produce") or n.startswith("consume")) and n in K:
            r = S[n]["rec_s"] / K[n]["rec_s"]
            lines.append(f"- {n}: samsa / Kafka = {r:.2f}x (target >= 1.0x at Kafka's "
                         f"defaults): {'met' if r >= 1.0 else '**not met**'}")
    C = R.get("cdc", {})
    ss, ds = g(C, "samsa", "rate", "sustained"), g(C, "debezium", "rate", "sustained")
    sc, dc = g(C, "samsa", "catchup", "rate"), g(C, "debezium", "catchup", "rate")
    if ss and ds:
        lines.append(f"- CDC sustained rate: {ss / ds:.2f}x Debezium's (target >= 5x): "
                     f"{'met' if ss / ds >= 5 else '**not met**'}"
                     + (" (samsa's figure is the loaders' limit, a floor)"
                        if g(C, "samsa", "rate", "limited_by_loaders") else ""))
    if sc and dc:
        lines.append(f"- CDC catch-up rate: {sc / dc:.2f}x Debezium's")
    sp, dp = g(C, "samsa", "latency", "p99_ms"), g(C, "debezium", "latency", "p99_ms")
    if sp and dp:
        lines.append(f"- CDC p99 latency: {sp / dp:.3f} of Debezium's (target <= 0.1): "
                     f"{'met' if sp / dp <= 0.1 else '**not met**'}")
    pl, sk = g(R, "sink", "plain", "rows_s"), g(R, "sink", "samsa", "rows_s")
    if pl and sk:
        lines.append(f"- sink: {sk / pl:.2f}x the plain upsert (target >= 0.7x): "
                     f"{'met' if sk / pl >= 0.7 else '**not met**'}")
    elif pl:
        lines.append(f"- sink: not measured: {g(R, 'sink', 'samsa', 'error')}")
    out.extend(lines)
    out.append("")


def charts_png(charts):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    made = []
    for kind, data in charts:
        if kind == "produce" and data:
            fig, ax = plt.subplots(figsize=(9, 4.5))
            w = 0.27
            xs = range(len(data))
            ax.bar([x - w for x in xs], [d[1] for d in data], w, label="Kafka 4.3.1 (defaults)")
            ax.bar([x for x in xs], [d[3] or 0 for d in data], w,
                   label="Kafka, flush.messages=1")
            ax.bar([x + w for x in xs], [d[2] for d in data], w,
                   label="samsa (synchronous_commit=on)")
            ax.set_xticks(list(xs))
            ax.set_xticklabels([d[0] for d in data], rotation=15, fontsize=8)
            ax.set_ylabel("records/s")
            ax.set_yscale("log")
            ax.set_title("Produce and consume capacity (one partition, 2 shared cores)")
            ax.legend(fontsize=8)
            fig.tight_layout()
            fig.savefig(os.path.join(RESULTS, "produce-consume.png"), dpi=100)
            made.append("produce-consume.png")
        if kind == "cdc":
            (sl, dl), (ss, ds, sc, dc, pr) = data["latency"], data["rates"]
            fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
            a1.bar(["samsa p50", "samsa p99", "Debezium p50", "Debezium p99"],
                   [sl.get("p50_ms") or 0, sl.get("p99_ms") or 0,
                    dl.get("p50_ms") or 0, dl.get("p99_ms") or 0],
                   color=["C2", "C2", "C1", "C1"])
            a1.set_yscale("log")
            a1.set_ylabel("ms, commit to consumer")
            a1.set_title("CDC latency at 1,000 changes/s")
            a2.bar(["samsa\nsustained", "Debezium\nsustained", "samsa\ncatch-up",
                    "Debezium\ncatch-up", "pg_recvlogical"],
                   [ss or 0, ds or 0, sc or 0, dc or 0, pr or 0],
                   color=["C2", "C1", "C2", "C1", "C7"])
            a2.set_ylabel("changes/s")
            a2.set_title("CDC rates")
            a2.tick_params(axis="x", labelsize=8)
            fig.tight_layout()
            fig.savefig(os.path.join(RESULTS, "cdc.png"), dpi=100)
            made.append("cdc.png")
        if kind == "sink":
            pl, s, d = data
            fig, ax = plt.subplots(figsize=(6, 4))
            ax.bar(["plain libpq\nupsert", "samsa sink", "Kafka + Debezium\nJDBC sink"],
                   [pl or 0, s or 0, d or 0], color=["C7", "C2", "C1"])
            ax.set_ylabel("rows/s")
            ax.set_title("Upserts into a keyed table")
            fig.tight_layout()
            fig.savefig(os.path.join(RESULTS, "sink.png"), dpi=100)
            made.append("sink.png")
    return made


def main():
    R = json.load(open(os.path.join(RESULTS, "results.json")))
    m = R.get("meta", {})
    out = [f"# samsa side by side with Apache Kafka and Debezium, {m.get('date')}\n",
           "Written by `make bench` (bench/bench.py, then bench/report.py) from "
           "bench/results/results.json, which holds every raw number, the "
           "ProducerPerformance lines included. All pairs ran in one run on the "
           "same machine. For produce and consume both brokers were up together "
           "(the one not measured idle), each had one untimed warm-up run first, "
           "and the runs alternated between them, pair by pair in alternating "
           "order, so that other load fell on both alike; CDC and sink ran one "
           "system at a time.\n",
           f"Machine: {m.get('cores')} cores, {m.get('mem_gib')} GiB, shared with other "
           f"work (load average at start: {m.get('load_at_start')}; at end: "
           f"{m.get('load_at_end')}). Every row says the load and the CPU the rest of "
           "the machine used while it ran; figures taken under other load are "
           "noisy, in both directions for both systems."
           + (" **BENCH_QUICK=1: a smoke run, runs a tenth as long; not for "
              "quoting.**" if m.get("quick") else "") + "\n",
           "Minutes per part: " + ", ".join(
               f"{k[:-8]} {v:.1f}" for k, v in m.items() if k.endswith("_minutes")) + "\n"]
    charts = []
    body = []
    produce_section(R, body, charts)
    cdc_section(R, body, charts)
    sink_section(R, body, charts)
    footprint_section(R, body)
    t = []
    targets(R, t)
    out += t + body
    profs = [(n, t) for n, t in (
        ("profile-samsa-produce.txt", "over a samsa produce run (1 KiB, acks=all)"),
        ("profile-samsa-cdc.txt", "while samsa drained the CDC catch-up backlog"),
        ("profile-samsa-sink.txt", "while samsa's sink applied the records"))
        if os.path.exists(os.path.join(RESULTS, n))]
    if profs:
        out.append("## Where samsa's time goes\n")
        for n, t in profs:
            out.append(f"`perf record -e cpu-clock` of samsa and its Postgres processes "
                       f"{t}: bench/results/{n} (first lines).\n")
            out.append("```\n" + "\n".join(open(os.path.join(RESULTS, n)).read()
                                            .strip().split("\n")[:30]) + "\n```\n")
    made = charts_png(charts)
    if made:
        out.append("## Charts\n")
        out += [f"![{c}]({c})\n" for c in made]
    with open(os.path.join(RESULTS, "README.md"), "w") as f:
        f.write("\n".join(out))
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
