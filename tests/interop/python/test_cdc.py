"""Change data capture: Postgres tables as topics through samsa's Kafka
Connect REST surface and its Debezium-compatible Postgres source.

The test Postgres (SAMSA_PG_CONNINFO, superuser, wal_level=logical) gets
databases of its own; psql loads the seed demo's CSVs as its README does.
"""
import base64
import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, TopicPartition

from samsa_client import bootstrap, unique

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = os.path.join(HERE, "..", "..", "data", "seed-demo")
CONNECT = os.environ.get("SAMSA_CONNECT_URL", "http://127.0.0.1:8083")


def pg_params():
    info = dict(kv.split("=", 1) for kv in os.environ["SAMSA_PG_CONNINFO"].split())
    return info["host"], info["port"]


def psql(db, *cmds):
    host, port = pg_params()
    args = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", port,
            "-U", "postgres", "-d", db]
    for c in cmds:
        args += ["-c", c]
    subprocess.run(args, check=True, capture_output=True)


def fresh_db(db):
    """An empty database db; slots left in an older one by a rerun go too."""
    for _ in range(50):  # a deleted connector's walsender may linger a bit
        try:
            psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
            break
        except subprocess.CalledProcessError:
            psql("postgres",
                 "SELECT pg_drop_replication_slot(slot_name) FROM "
                 f"pg_replication_slots WHERE database = '{db}' AND NOT active")
            time.sleep(0.2)
    psql("postgres",
         "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
         f"WHERE database = '{db}' AND NOT active",
         f"DROP DATABASE IF EXISTS {db} WITH (FORCE)", f"CREATE DATABASE {db}")


def make_students(db):
    """The seed README's database: admission and research, 300 rows each."""
    fresh_db(db)
    psql(db,
         "CREATE TABLE admission (student_id INTEGER, gre INTEGER, toefl INTEGER, "
         "cpga DOUBLE PRECISION, admit_chance DOUBLE PRECISION, "
         "CONSTRAINT student_id_pk PRIMARY KEY (student_id))",
         "CREATE TABLE research (student_id INTEGER, rating INTEGER, "
         "research INTEGER, PRIMARY KEY (student_id))",
         f"\\copy admission FROM '{SEED}/admit_1.csv' DELIMITER ',' CSV HEADER",
         f"\\copy research FROM '{SEED}/research_1.csv' DELIMITER ',' CSV HEADER")


def post(cfg):
    """Creates cfg's connector after deleting any left by an earlier run."""
    http("DELETE", "/connectors/" + cfg["name"])
    return http("POST", "/connectors", cfg)


def http(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(CONNECT + path, data=data, method=method,
                                 headers={"Content-Type": "application/json",
                                          "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        text = e.read()
        return e.code, json.loads(text) if text else None


def seed_config(db, **over):
    """postgres-source.json with host, port and database adjusted."""
    with open(os.path.join(SEED, "postgres-source.json")) as f:
        c = json.load(f)
    host, port = pg_params()
    c["config"].update({"database.hostname": host, "database.port": port,
                        "database.dbname": db,
                        "value.converter": "org.apache.kafka.connect.json.JsonConverter"})
    for k, v in over.items():
        k = k.replace("__", ".")
        if v is None:
            c["config"].pop(k, None)
        else:
            c["config"][k] = v
    return c


def consume(topic, n, timeout=60):
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": unique("cdc"),
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    out = []
    deadline = time.time() + timeout
    while len(out) < n and time.time() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        out.append(m)
    c.close()
    return out


def wait_topic(name, timeout=60):
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": unique("cdcw")})
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            if name in c.list_topics(timeout=5).topics:
                return
            time.sleep(0.3)
    finally:
        c.close()
    raise AssertionError(f"topic {name} never appeared")


def wait_state(name, state, timeout=60):
    deadline = time.time() + timeout
    st = None
    while time.time() < deadline:
        code, st = http("GET", f"/connectors/{name}/status")
        if code == 200 and st["tasks"] and st["tasks"][0]["state"] == state:
            return st
        time.sleep(0.3)
    raise AssertionError(f"{name} never became {state}: {st}")


def test_rest_surface():
    code, plugins = http("GET", "/connector-plugins")
    assert code == 200
    assert any(p["class"] == "io.debezium.connector.postgresql.PostgresConnector"
               for p in plugins)
    code, body = http("GET", "/connectors/nope/status")
    assert code == 404 and body["error_code"] == 404
    code, body = http("POST", "/connectors", {"name": "bad", "config": {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.user": "postgres", "database.dbname": "x", "topic.prefix": "p"}})
    assert code == 400 and "database.hostname" in body["message"]
    code, body = http("POST", "/connectors", {"name": "bad", "config": {
        "connector.class": "com.example.Nope"}})
    assert code == 400 and "connector.class" in body["message"]
    code, body = http("PUT", "/connector-plugins/io.debezium.connector.postgresql."
                      "PostgresConnector/config/validate",
                      {"connector.class": "io.debezium.connector.postgresql.PostgresConnector",
                       "snapshot.mode": "sometimes"})
    assert code == 200 and body["error_count"] == 1


def test_seed_json_unwrap():
    """The seed's config (JsonConverter values): 300 flattened snapshot
    records per table, then changes flattened as ExtractNewRecordState's 1.x
    defaults make them (deletes and tombstones dropped)."""
    make_students("students")
    cfg = seed_config("students")
    code, body = post(cfg)
    assert code == 201, body
    assert body["name"] == "postgres-source"
    code, _ = http("POST", "/connectors", cfg)
    assert code == 409
    code, names = http("GET", "/connectors")
    assert "postgres-source" in names
    for table in ("admission", "research"):
        msgs = consume(f"dbserver1.public.{table}", 300)
        assert len(msgs) == 300
        first = json.loads(msgs[0].value())
        assert first["schema"]["name"] == f"dbserver1.public.{table}.Value"
        assert msgs[0].key() == b"Struct{student_id=1}"
        assert first["payload"]["student_id"] == 1
    row = json.loads(consume("dbserver1.public.admission", 1)[0].value())["payload"]
    assert row == {"student_id": 1, "gre": 337, "toefl": 118, "cpga": 9.65,
                   "admit_chance": 0.92}
    wait_state("postgres-source", "RUNNING")
    psql("students", "INSERT INTO admission VALUES (1000, 300, 100, 8.5, 0.5)",
         "UPDATE admission SET gre = 301 WHERE student_id = 1000",
         "DELETE FROM admission WHERE student_id = 1000",
         "INSERT INTO admission VALUES (1001, 310, 101, 8.6, 0.6)")
    msgs = consume("dbserver1.public.admission", 303)[300:]
    assert [m.key() for m in msgs] == [b"Struct{student_id=1000}"] * 2 + \
        [b"Struct{student_id=1001}"]
    vals = [json.loads(m.value())["payload"] for m in msgs]
    assert [v["gre"] for v in vals] == [300, 301, 310]
    code, topics = http("GET", "/connectors/postgres-source/topics")
    assert sorted(topics["postgres-source"]["topics"]) == [
        "dbserver1.public.admission", "dbserver1.public.research"]
    rc = subprocess.run(["kcat", "-b", bootstrap(), "-C", "-t",
                         "dbserver1.public.research", "-o", "0", "-c", "300",
                         "-e", "-q", "-f", "%k\n"], capture_output=True,
                        timeout=60, text=True)
    assert rc.stdout.splitlines()[0] == "Struct{student_id=1}"
    assert len(rc.stdout.splitlines()) == 300


def test_envelope_changes_in_commit_order():
    """No transform, schemaless JSON: Debezium's envelope, ops c/u/d, the
    tombstone, a primary-key change and a TRUNCATE, in commit order."""
    db = "students_env"
    make_students(db)
    cfg = seed_config(db, transforms=None, transforms__unwrap__type=None,
                      **{"database.server.name": "envtest",
                         "slot.name": "env_slot", "publication.name": "env_pub",
                         "value.converter.schemas.enable": "false",
                         "key.converter": "org.apache.kafka.connect.json.JsonConverter",
                         "key.converter.schemas.enable": "false",
                         "publication.autocreate.mode": "filtered",
                         "table.include.list": "public.admission"})
    cfg["name"] = "env-source"
    code, body = post(cfg)
    assert code == 201, body
    snap = consume("envtest.public.admission", 300)
    assert len(snap) == 300
    v = json.loads(snap[0].value())
    assert v["op"] == "r" and v["before"] is None
    assert v["after"]["student_id"] == 1
    assert v["source"]["connector"] == "postgresql"
    assert v["source"]["table"] == "admission" and v["source"]["db"] == db
    assert json.loads(snap[0].key()) == {"student_id": 1}
    wait_state("env-source", "RUNNING")
    psql(db, "BEGIN; INSERT INTO admission VALUES (2000, 300, 100, 8.5, 0.5); "
             "UPDATE admission SET toefl = 99 WHERE student_id = 2000; COMMIT",
         "UPDATE admission SET student_id = 2001 WHERE student_id = 2000",
         "DELETE FROM admission WHERE student_id = 2001",
         "INSERT INTO research VALUES (5000, 1, 1)",
         "TRUNCATE admission")
    msgs = consume("envtest.public.admission", 300 + 8)[300:]
    ops = [(json.loads(m.value())["op"] if m.value() else None) for m in msgs]
    assert ops == ["c", "u", "d", None, "c", "d", None, "t"]
    vals = [json.loads(m.value()) if m.value() else None for m in msgs]
    assert vals[1]["after"]["toefl"] == 99
    assert vals[2]["before"]["student_id"] == 2000
    assert vals[4]["after"]["student_id"] == 2001
    assert json.loads(msgs[3].key()) == {"student_id": 2000}
    assert msgs[7].key() is None
    lsns = [int.from_bytes(dict(m.headers())["__samsa.lsn"], "big") for m in msgs]
    assert lsns == sorted(lsns)
    http("DELETE", "/connectors/env-source")


def test_string_converter_and_types():
    """StringConverter values (Struct text) and the type mapping."""
    db = "students_types"
    fresh_db(db)
    psql(db, "CREATE TABLE t (id int PRIMARY KEY, b bool, s smallint, l bigint, "
             "r real, n numeric(10,2), v varchar(10), d date, ts timestamp, "
             "tz timestamptz, u uuid, j jsonb, by bytea)",
         "INSERT INTO t VALUES (1, true, 2, 3, 1.5, 12.34, 'x', '1970-01-11', "
         "'1970-01-01 00:00:01.5', '2024-01-02 03:04:05+00', "
         "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"a\": 1}', '\\x0102')",
         "CREATE TABLE nokey (a int)", "INSERT INTO nokey VALUES (7)")
    cfg = seed_config(db, transforms=None, transforms__unwrap__type=None,
                      **{"database.server.name": "types", "slot.name": "types_slot",
                         "publication.name": "types_pub",
                         "key.converter": "org.apache.kafka.connect.json.JsonConverter"})
    cfg["name"] = "types-source"
    assert post(cfg)[0] == 201
    m = consume("types.public.t", 1)[0]
    v = json.loads(m.value())
    after = v["payload"]["after"]
    fields = {f["field"]: f for f in v["schema"]["fields"][1]["fields"]}
    assert after["b"] is True and after["s"] == 2 and after["l"] == 3
    assert after["r"] == 1.5 and fields["r"]["type"] == "float"
    assert base64.b64decode(after["n"]) == (1234).to_bytes(2, "big")
    assert fields["n"]["name"] == "org.apache.kafka.connect.data.Decimal"
    assert fields["n"]["parameters"]["scale"] == "2"
    assert after["d"] == 10 and fields["d"]["name"] == "io.debezium.time.Date"
    assert after["ts"] == 1500000
    assert fields["ts"]["name"] == "io.debezium.time.MicroTimestamp"
    assert after["tz"] == "2024-01-02T03:04:05Z"
    assert after["u"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert json.loads(after["j"]) == {"a": 1}
    assert fields["j"]["name"] == "io.debezium.data.Json"
    assert base64.b64decode(after["by"]) == b"\x01\x02"
    assert json.loads(m.key()) == {"id": 1}
    nk = consume("types.public.nokey", 1)[0]
    assert nk.key() is None
    http("DELETE", "/connectors/types-source")
    # StringConverter for the value too: Connect's Struct text.
    cfg["name"] = "types-string"
    cfg["config"].update({"value.converter": "org.apache.kafka.connect.storage.StringConverter",
                          "key.converter": "org.apache.kafka.connect.storage.StringConverter",
                          "database.server.name": "typesstr",
                          "slot.name": "types_str_slot"})
    assert post(cfg)[0] == 201
    m = consume("typesstr.public.nokey", 1)[0]
    assert m.value().decode().startswith("Struct{after=Struct{a=7},source=Struct{")
    assert ",op=r," in m.value().decode()
    http("DELETE", "/connectors/types-string")


def test_failures_show_in_status():
    db = "students_fail"
    fresh_db(db)
    cfg = seed_config("no_such_database", **{"database.server.name": "failing",
                                             "slot.name": "fail_slot"})
    cfg["name"] = "fail-db"
    assert post(cfg)[0] == 201
    st = wait_state("fail-db", "FAILED")
    assert "no_such_database" in st["tasks"][0]["trace"]
    cfg = seed_config(db, **{"database.server.name": "failing2",
                             "slot.name": "fail_slot2",
                             "table.include.list": "public.nosuch"})
    cfg["name"] = "fail-table"
    assert post(cfg)[0] == 201
    st = wait_state("fail-table", "FAILED")
    assert 'relation "public.nosuch" does not exist' in st["tasks"][0]["trace"]
    # samsa keeps serving
    assert http("GET", "/connectors")[0] == 200
    http("DELETE", "/connectors/fail-db")
    assert http("DELETE", "/connectors/fail-table")[0] == 204
    assert http("GET", "/connectors/fail-table")[0] == 404
