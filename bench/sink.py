"""Sink side by side (part `sink` of bench/bench.py): rows/s upserted into a
keyed Postgres table by
  - samsa's JDBC sink (a Debezium JDBC sink config POSTed to its Connect
    REST port; a Confluent one when samsa declines the Debezium class),
  - Debezium's JDBC sink connector on Kafka Connect standalone, reading
    from Apache Kafka 4.x,
  - bench/upsert.c: libpq, INSERT ... SELECT unnest(...) ON CONFLICT DO
    UPDATE, the same rows, one statement and one transaction per batch.
The same N rows every time (row i: id = i % (N/2) + 1, a = "row-<i>",
b = i, c = i/2; the last has b = -1), so half are inserts and half
conflict; batch.size 500 (Debezium's default) for all three; the table is
created beforehand, the same for all: (id bigint PRIMARY KEY, a text,
b bigint, c float8).  For the connectors the N records (JsonConverter
with schemas: what a JDBC sink needs) are in the topic before the
connector starts; the rate runs from the first row seen in the table to
the last (the sentinel b = -1), sampled every 50 ms, so start-up is not
counted for anyone.
"""

import json
import os
import subprocess
import time

import stacks
from stacks import ConnectStack, KafkaStack, Meter, PgStack

DB = "sinkdb"
BATCH = 500


def log(*a):
    import sys
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


KEY_SCHEMA = {"type": "struct", "optional": False, "name": "bench.key",
              "fields": [{"field": "id", "type": "int64", "optional": False}]}
VAL_SCHEMA = {"type": "struct", "optional": False, "name": "bench.row",
              "fields": [{"field": "id", "type": "int64", "optional": False},
                         {"field": "a", "type": "string", "optional": True},
                         {"field": "b", "type": "int64", "optional": True},
                         {"field": "c", "type": "double", "optional": True}]}


def produce_rows(bootstrap, topic, n):
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        f.result(60)
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20,
                  "batch.size": 262144, "acks": "all"})
    half = n // 2
    ks = json.dumps(KEY_SCHEMA)
    vs = json.dumps(VAL_SCHEMA)
    for i in range(n):
        k = i % half + 1
        key = '{"schema":%s,"payload":{"id":%d}}' % (ks, k)
        val = '{"schema":%s,"payload":{"id":%d,"a":"row-%d","b":%d,"c":%.1f}}' % (
            vs, k, i, -1 if i == n - 1 else i, i / 2.0)
        while True:
            try:
                p.produce(topic, val.encode(), key.encode())
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    if p.flush(120) != 0:
        raise RuntimeError("rows not all produced")


def create_table(pg, table):
    pg.psql(f"CREATE TABLE {table} (id bigint PRIMARY KEY, a text, b bigint, "
            "c double precision)", db=DB)


def watch(pg, table, n, roots_fn, timeout, t_created, perf=None):
    half = n // 2
    q_first = f"SELECT count(*) > 0 FROM (SELECT 1 FROM {table} LIMIT 1) s"
    q_last = f"SELECT coalesce((SELECT b FROM {table} WHERE id = {half}), 0)"
    end = time.time() + timeout
    first = None
    m = None
    while time.time() < end:
        if first is None:
            if pg.psql(q_first, db=DB) == "t":
                first = time.time()
                m = Meter(roots_fn).start()
                if perf:
                    perf[0].start(stacks.tree(roots_fn()))
        if first is not None and pg.psql(q_last, db=DB) == "-1":
            last = time.time()
            if perf:
                perf[0].stop(perf[1], f"samsa and its Postgres applying {n} sink records: "
                             f"{n / max(1e-3, last - first):.0f} rows/s")
            r = {"rows": n, "start_to_first_row_s": first - t_created,
                 "seconds": last - first, "rows_s": n / max(1e-3, last - first)}
            mm = m.stop()
            r.update({"stack_cpu_s": mm["stack_cpu_s"], "peak_pss_mb": mm["peak_pss_mb"],
                      "other_cpu_pct": mm["other_cpu_pct"], "load": mm["load"]})
            got = int(pg.psql(f"SELECT count(*) FROM {table}", db=DB))
            r["table_rows"] = got
            if got != half:
                r["error"] = f"table has {got} rows, not {half}"
            return r
        time.sleep(0.05)
    if m:
        m.stop()
    return {"rows": n, "error": f"not applied within {timeout} s",
            "table_rows": int(pg.psql(f"SELECT count(*) FROM {table}", db=DB))}


def debezium_sink_config(pg, topic):
    return {
        "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
        "tasks.max": "1", "topics": topic,
        "connection.url": f"jdbc:postgresql://127.0.0.1:{pg.port}/{DB}",
        "connection.username": "postgres", "connection.password": "postgres",
        "insert.mode": "upsert", "primary.key.mode": "record_key",
        "primary.key.fields": "id", "schema.evolution": "none",
        "batch.size": str(BATCH),
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "true",
        "value.converter.schemas.enable": "true",
    }


def confluent_sink_config(pg, topic):
    return {
        "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
        "tasks.max": "1", "topics": topic,
        "connection.url": f"jdbc:postgresql://127.0.0.1:{pg.port}/{DB}",
        "connection.user": "postgres", "connection.password": "postgres",
        "insert.mode": "upsert", "pk.mode": "record_key", "pk.fields": "id",
        "auto.create": "false", "batch.size": str(BATCH),
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
    }


def post(url, body):
    return stacks.http(url, body)


def run(RES, WORK, SAMSA_BIN, QUICK, save):
    n = 20000 if QUICK else int(os.environ.get("BENCH_SINK_ROWS", 200000))
    timeout = 120 if QUICK else 400
    res = RES.setdefault("sink", {})
    res["settings"] = {"rows": n, "batch.size": BATCH, "distinct_keys": n // 2}
    pg = PgStack(os.path.join(WORK, "sink"), SAMSA_BIN)
    pg.pg_start()
    k = conn = None
    try:
        pg.psql(f"CREATE DATABASE {DB}", db="postgres")
        # -- plain libpq upsert
        exe = stacks.build_c(WORK, "upsert", ["-lpq"])
        create_table(pg, "sink_plain")
        m = Meter(pg.roots).start()
        out = subprocess.run([exe, pg.conninfo(DB), "sink_plain", str(n), str(BATCH)],
                             capture_output=True, text=True, check=True).stdout
        r = m.stop()
        secs = float(out.split()[3])
        res["plain"] = {"rows": n, "seconds": secs, "rows_s": n / secs,
                        "stack_cpu_s": r["stack_cpu_s"], "other_cpu_pct": r["other_cpu_pct"],
                        "load": r["load"]}
        log(f"sink plain upsert: {res['plain']['rows_s']:.0f} rows/s")
        save(RES)

        # -- samsa's sink
        pg.samsa_start()
        create_table(pg, "sink_samsa")
        produce_rows(pg.bootstrap, "sink_samsa", n)
        t0 = time.time()
        cfg = debezium_sink_config(pg, "sink_samsa")
        st, body = post(pg.connect_url + "/connectors", {"name": "sink", "config": cfg})
        used = "io.debezium.connector.jdbc.JdbcSinkConnector"
        if st >= 300:
            first_answer = f"{st} {body[:300]}"
            cfg = confluent_sink_config(pg, "sink_samsa")
            t0 = time.time()
            st, body = post(pg.connect_url + "/connectors", {"name": "sink", "config": cfg})
            used = "io.confluent.connect.jdbc.JdbcSinkConnector"
        if st >= 300:
            res["samsa"] = {"error": f"samsa declined the sink: Debezium config: "
                            f"{first_answer}; Confluent config: {st} {body[:300]}"}
        else:
            res["samsa"] = watch(
                pg, "sink_samsa", n, pg.roots, timeout, t0,
                (stacks.Perf(os.path.join(WORK, "perf-sink.data")),
                 os.path.join(stacks.ROOT, "bench", "results", "profile-samsa-sink.txt")))
            res["samsa"]["connector.class"] = used
        log(f"sink samsa: {res['samsa']}")
        save(RES)
        pg.samsa_stop()

        # -- Debezium JDBC sink on Connect standalone, from Apache Kafka
        k = KafkaStack(os.path.join(WORK, "sink-kafka"))
        k.format()
        k.start()
        k.wait()
        create_table(pg, "sink_dbz")
        produce_rows(k.bootstrap, "sink_dbz", n)
        cfg = dict(debezium_sink_config(pg, "sink_dbz"), name="sink")
        conn = ConnectStack(os.path.join(WORK, "sink-connect"), k.bootstrap, cfg)
        t0 = time.time()
        conn.start()
        res["debezium"] = watch(pg, "sink_dbz", n,
                                lambda: k.roots() + conn.roots() + [pg.pg_pid()],
                                timeout, t0)
        res["debezium"]["connector"] = "io.debezium.connector.jdbc.JdbcSinkConnector 3.6.0.Final"
        log(f"sink debezium: {res['debezium']}")
        save(RES)
    finally:
        if conn:
            conn.stop()
        if k:
            k.stop()
        pg.stop()
