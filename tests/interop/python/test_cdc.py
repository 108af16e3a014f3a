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
from confluent_kafka import Consumer, Producer, TopicPartition

from samsa_client import admin_client, bootstrap, create_topic, unique

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
    # And Java's kafka-console-consumer (kafka-tools 4.x), in a group.
    here = os.path.dirname(os.path.abspath(__file__))
    cpfile = os.path.join(here, "..", "java", "target", "test-classpath.txt")
    with open(cpfile) as f:
        cp = f.read().strip()
    rc = subprocess.run(["java", "-cp", cp,
                         "org.apache.kafka.tools.consumer.ConsoleConsumer",
                         "--bootstrap-server", bootstrap(),
                         "--topic", "dbserver1.public.research",
                         "--group", "cdc-console-" + str(os.getpid()),
                         "--from-beginning", "--max-messages", "300",
                         "--timeout-ms", "60000",
                         "--formatter-property", "print.key=true",
                         "--formatter-property", "key.separator=|"],
                        capture_output=True, timeout=120, text=True,
                        stdin=subprocess.DEVNULL)
    assert rc.returncode == 0, rc.stderr[-2000:]
    lines = rc.stdout.splitlines()
    assert len(lines) == 300
    assert lines[0].startswith("Struct{student_id=1}|")
    assert json.loads(lines[0].split("|", 1)[1])["payload"]["student_id"] == 1


def test_envelope_changes_in_commit_order():
    """No transform, schemaless JSON: Debezium's envelope, ops c/u/d, the
    tombstone, a primary-key change and a TRUNCATE (asked for: Debezium
    skips them by default), in commit order."""
    db = "students_env"
    make_students(db)
    cfg = seed_config(db, transforms=None, transforms__unwrap__type=None,
                      **{"database.server.name": "envtest",
                         "slot.name": "env_slot", "publication.name": "env_pub",
                         "value.converter.schemas.enable": "false",
                         "key.converter": "org.apache.kafka.connect.json.JsonConverter",
                         "key.converter.schemas.enable": "false",
                         "publication.autocreate.mode": "filtered",
                         "truncate.handling.mode": "include",
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


def producer_partitions(keys, partitions):
    """The partition librdkafka's murmur2_random partitioner (the Java
    producer's for keyed records) gives each key among partitions, read off
    the delivery reports of a topic of that size."""
    admin = admin_client()
    topic = unique("cdc-partitioner")
    create_topic(admin, topic, partitions)
    p = Producer({"bootstrap.servers": bootstrap(),
                  "partitioner": "murmur2_random"})
    got = {}

    def done(err, msg):
        assert err is None, err
        got[msg.key()] = msg.partition()

    for k in keys:
        p.produce(topic, key=k, value=b"", on_delivery=done)
    assert p.flush(30) == 0
    return got


def test_keys_spread_over_partitions_like_a_producer():
    """A table topic of three partitions (made before the connector, as
    with topic.creation or num.partitions on Kafka): every change goes to
    the partition Kafka Connect's producer would pick for its key, so that
    a later change of a row follows its snapshot record and a Streams join
    against another topic with the same keys meets it."""
    db = "cdc_parts"
    fresh_db(db)
    psql(db, "CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT)",
         "INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 200) g")
    topic = "partest.public.items"
    create_topic(admin_client(), topic, 3)
    cfg = seed_config(db, transforms=None, transforms__unwrap__type=None,
                      **{"database.server.name": "partest",
                         "slot.name": "parts_slot",
                         "publication.name": "parts_pub",
                         "publication.autocreate.mode": "filtered",
                         "table.include.list": "public.items",
                         "key.converter": "org.apache.kafka.connect.json.JsonConverter",
                         "key.converter.schemas.enable": "false",
                         "value.converter.schemas.enable": "false"})
    cfg["name"] = "parts-source"
    code, body = post(cfg)
    assert code == 201, body
    wait_state("parts-source", "RUNNING")
    psql(db, "UPDATE items SET v = 'changed' WHERE id % 10 = 0")

    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": unique("cdcp"),
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, 0) for p in range(3)])
    msgs = []
    deadline = time.time() + 60
    while len(msgs) < 220 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            msgs.append(m)
    c.close()
    assert len(msgs) == 220
    want = producer_partitions({m.key() for m in msgs}, 3)
    assert {m.key(): m.partition() for m in msgs} == want
    used = {m.partition() for m in msgs}
    assert used == {0, 1, 2}, used
    # Within a partition, a row's change comes after its snapshot record.
    by_key = {}
    for m in msgs:
        by_key.setdefault(m.key(), []).append(json.loads(m.value())["op"])
    assert by_key[b'{"id":10}'] == ["r", "u"]
    http("DELETE", "/connectors/parts-source")
    drop_slot("parts_slot")


def drop_slot(slot):
    """Drops slot once its connector's walsender let it go: a deleted
    connector leaves its slot, as Debezium's does, and this cluster has
    room for ten."""
    for _ in range(100):
        psql("postgres", "SELECT pg_drop_replication_slot(slot_name) FROM "
             f"pg_replication_slots WHERE slot_name = '{slot}' AND NOT active")
        if psql_out("postgres", "SELECT count(*) FROM pg_replication_slots "
                    f"WHERE slot_name = '{slot}'") == "0":
            return
        time.sleep(0.2)
    raise AssertionError(f"slot {slot} still there")


def slot_count(slot):
    return int(psql_out("postgres", "SELECT count(*) FROM pg_replication_slots "
                        f"WHERE slot_name = '{slot}'"))


def test_slot_drop_on_stop():
    """slot.drop.on.stop=true (Debezium's option): deleting the connector
    drops its replication slot once the walsender lets go of it, so that
    Postgres may recycle the WAL; without the option the slot stays, as
    Debezium's does, for a connector made again to resume from."""
    db = "cdc_slotdrop"
    fresh_db(db)
    psql(db, "CREATE TABLE t (id INTEGER PRIMARY KEY)")
    for name, drop in (("drop", "true"), ("keep", None)):
        cfg = seed_config(db, transforms=None, transforms__unwrap__type=None,
                          **{"database.server.name": name + "drop",
                             "slot.name": name + "_slot",
                             "publication.name": name + "_pub",
                             "publication.autocreate.mode": "filtered",
                             "table.include.list": "public.t",
                             "slot.drop.on.stop": drop})
        cfg["name"] = name + "-source"
        code, body = post(cfg)
        assert code == 201, body
        wait_state(cfg["name"], "RUNNING")
        deadline = time.time() + 60
        while slot_count(name + "_slot") == 0:
            assert time.time() < deadline, f"{name}: no slot made"
            time.sleep(0.2)
        code, _ = http("DELETE", "/connectors/" + cfg["name"])
        assert code == 204
    deadline = time.time() + 20
    while slot_count("drop_slot") != 0:
        assert time.time() < deadline, "slot.drop.on.stop: the slot stayed"
        time.sleep(0.2)
    assert slot_count("keep_slot") == 1
    drop_slot("keep_slot")


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


def post_until_failed(cfg, name, words):
    """posts cfg as connector `name`; its task must fail with `words` in
    its trace (-> the connector's status)"""
    cfg["name"] = name
    code, body = post(cfg)
    assert code == 201, body
    st = wait_state(name, "FAILED")
    assert words in st["tasks"][0]["trace"], st
    return st


def test_failures_show_in_status():
    db = "students_fail"
    fresh_db(db)
    post_until_failed(seed_config("no_such_database",
                                  **{"database.server.name": "failing",
                                     "slot.name": "fail_slot"}),
                      "fail-db", "no_such_database")
    post_until_failed(seed_config(db, **{"database.server.name": "failing2",
                                         "slot.name": "fail_slot2",
                                         "table.include.list": "public.nosuch"}),
                      "fail-table", 'relation "public.nosuch" does not exist')
    # Debezium's TLS settings reach libpq: this Postgres has no TLS
    post_until_failed(seed_config(db, **{"database.server.name": "failing3",
                                         "slot.name": "fail_slot3",
                                         "database.sslmode": "require"}),
                      "fail-ssl", "server does not support SSL")
    code, body = post(seed_config(db, **{"database.sslmode": "sure"}))
    assert code == 400 and "database.sslmode" in body["message"], body
    # samsa keeps serving
    assert http("GET", "/connectors")[0] == 200
    http("DELETE", "/connectors/fail-db")
    http("DELETE", "/connectors/fail-ssl")
    assert http("DELETE", "/connectors/fail-table")[0] == 204
    assert http("GET", "/connectors/fail-table")[0] == 404


def test_host_names_are_looked_up():
    """database.hostname may be a name: samsa looks it up off its event loop
    (storage/pgresolve.c; libpq would block the loop in getaddrinfo), and a
    name that does not resolve fails the task with libpq's words while samsa
    keeps serving."""
    db = "cdc_named_host"
    fresh_db(db)
    psql(db, "CREATE TABLE t (id int PRIMARY KEY, v bigint)",
         "INSERT INTO t VALUES (1, -9223372036854775808)")
    cfg = seed_config(db, **{"database.hostname": "localhost",
                             "database.server.name": "named",
                             "slot.name": "named_slot",
                             "publication.name": "named_pub"})
    cfg["name"] = "named-source"
    assert post(cfg)[0] == 201
    m = consume("named.public.t", 1)[0]
    assert json.loads(m.value())["payload"] == {"id": 1, "v": -9223372036854775808}
    assert http("DELETE", "/connectors/named-source")[0] == 204
    cfg = seed_config(db, **{"database.hostname": "samsa-no-such-host.invalid",
                             "database.server.name": "nohost",
                             "slot.name": "nohost_slot"})
    post_until_failed(cfg, "nohost-source", "could not translate host name "
                      '"samsa-no-such-host.invalid"')
    assert http("GET", "/connectors")[0] == 200
    assert http("DELETE", "/connectors/nohost-source")[0] == 204


def psql_out(db, cmd):
    host, port = pg_params()
    return subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                           "-h", host, "-p", port, "-U", "postgres", "-d", db,
                           "-c", cmd], check=True, capture_output=True,
                          text=True).stdout.strip()


def test_wrong_password_fails_and_samsa_keeps_serving():
    """Acceptance 4: the test Postgres trusts local connections, so this
    test makes it demand a SCRAM password from one role over TCP (two lines
    prepended to pg_hba.conf, restored afterwards). A wrong password gives
    FAILED with Postgres's error in the trace while Kafka keeps working;
    the same config with the right password runs."""
    db = "students_pw"
    make_students(db)
    psql("postgres",
         "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cdcpw') "
         "THEN CREATE ROLE cdcpw LOGIN REPLICATION PASSWORD 'right'; "
         "ELSE ALTER ROLE cdcpw LOGIN REPLICATION PASSWORD 'right'; END IF; END $$")
    # cdcpw is no superuser: the publication is made for it, and it may read.
    psql(db, "GRANT SELECT ON ALL TABLES IN SCHEMA public TO cdcpw",
         "CREATE PUBLICATION pw_pub FOR ALL TABLES")
    hba = psql_out("postgres", "SHOW hba_file")
    st = os.stat(hba)
    with open(hba) as f:
        original = f.read()
    try:
        with open(hba, "w") as f:
            f.write("host all cdcpw 127.0.0.1/32 scram-sha-256\n"
                    "host replication cdcpw 127.0.0.1/32 scram-sha-256\n" + original)
        os.chown(hba, st.st_uid, st.st_gid)
        psql("postgres", "SELECT pg_reload_conf()")
        time.sleep(0.5)  # the postmaster rereads the file on SIGHUP
        # The server now refuses a wrong password for cdcpw:
        host, port = pg_params()
        r = subprocess.run(["psql", "-X", "-h", host, "-p", port, "-U", "cdcpw",
                            "-d", db, "-c", "SELECT 1"], capture_output=True,
                           text=True, env=dict(os.environ, PGPASSWORD="wrong"))
        assert r.returncode != 0 and "password authentication failed" in r.stderr

        over = {"database.server.name": "pwtest", "slot.name": "pw_slot",
                "publication.name": "pw_pub", "database.user": "cdcpw",
                "database.password": "wrong"}
        st_ = post_until_failed(seed_config(db, **over), "pw-source",
                                'password authentication failed for user "cdcpw"')
        assert st_["connector"]["state"] in ("FAILED", "RUNNING")
        # samsa keeps serving: Connect REST, and a Kafka produce and consume.
        assert http("GET", "/connectors")[0] == 200
        topic = unique("cdc-pw-alive")
        p = Producer({"bootstrap.servers": bootstrap()})
        p.produce(topic, key=b"k", value=b"still serving")
        assert p.flush(30) == 0
        got = consume(topic, 1, timeout=30)
        assert [m.value() for m in got] == [b"still serving"]
        assert http("DELETE", "/connectors/pw-source")[0] == 204

        # The same config with the right password runs and snapshots.
        cfg = seed_config(db, **dict(over, **{"database.password": "right"}))
        cfg["name"] = "pw-source"
        code, body = post(cfg)
        assert code == 201, body
        msgs = consume("pwtest.public.admission", 300)
        assert len(msgs) == 300
        wait_state("pw-source", "RUNNING")
        psql(db, "INSERT INTO admission VALUES (3000, 300, 100, 8.5, 0.5)")
        msgs = consume("pwtest.public.admission", 301)
        assert json.loads(msgs[300].value())["payload"]["student_id"] == 3000
    finally:
        http("DELETE", "/connectors/pw-source")
        with open(hba, "w") as f:
            f.write(original)
        os.chown(hba, st.st_uid, st.st_gid)
        psql("postgres", "SELECT pg_reload_conf()")


# --- golden test: Debezium's documented type mapping ------------------------
#
# Expected schemas and values are written by hand from Debezium's PostgreSQL
# connector documentation (postgresql.adoc, "Data type mappings": basic,
# temporal, decimal and binary types) and Kafka Connect's JsonConverter
# (logical types carry "name" and "version": 1; Decimal carries
# "parameters" {"scale", "connect.decimal.precision"}), not from samsa.

GOLD_DDL = (
    "CREATE TABLE gold (id int PRIMARY KEY, "
    "c_bool bool, c_int2 int2, c_int4 int4 NOT NULL, c_int8 int8, "
    "c_float4 float4, c_float8 float8, "
    "c_num numeric(10,2), c_numneg numeric(10,2), c_num0 numeric(5,0), c_numvar numeric, "
    "c_text text, c_varchar varchar(10), c_char char(3), "
    "c_date date, c_time time, c_time3 time(3), c_ts timestamp, c_ts3 timestamp(3), "
    "c_tstz timestamptz, c_timetz timetz, c_timetz2 timetz, c_uuid uuid, c_json json, c_jsonb jsonb, "
    "c_bytea bytea, c_oid oid, c_null text)")
GOLD_COLS = [
    "id", "c_bool", "c_int2", "c_int4", "c_int8", "c_float4", "c_float8",
    "c_num", "c_numneg", "c_num0", "c_numvar", "c_text", "c_varchar", "c_char",
    "c_date", "c_time", "c_time3", "c_ts", "c_ts3", "c_tstz", "c_timetz",
    "c_timetz2", "c_uuid", "c_json", "c_jsonb", "c_bytea", "c_oid", "c_null"]
GOLD_ROW = (
    "INSERT INTO gold VALUES (1, true, -2, 2147483647, 9223372036854775807, "
    "1.5, -2.25, 12.34, -0.01, 7, 1.50, 'hello', 'vé', 'ab', "
    "'2024-02-29', '13:14:15.123456', '13:14:15.123', "
    "'2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.123', "
    "'2024-01-02 03:04:05.5+02', '13:14:15+02', '22:30:00.25-03:30', "
    "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"a\": [1, 2]}', "
    "'{\"b\": null}', '\\x00ff10', 12345, NULL)")


def _s(typ, optional=True, name=None, **extra):
    s = {"type": typ, "optional": optional}
    if name:
        s["name"] = name
        s["version"] = 1
    s.update(extra)
    return s


def _days(y, m, d):
    import datetime
    return (datetime.date(y, m, d) - datetime.date(1970, 1, 1)).days


GOLD_EPOCH_US = _days(2024, 1, 2) * 86400_000000 + (3 * 3600 + 4 * 60 + 5) * 1000000
GOLD_TIME_US = (13 * 3600 + 14 * 60 + 15) * 1000000 + 123456


def gold_expected(mode):
    """(schema per field, payload per field) for the gold row, per
    decimal.handling.mode / time.precision.mode / binary.handling.mode."""
    dec = {"precise": "precise", "double": "double", "string": "string"}[mode]
    s = {
        "id": _s("int32", False),
        "c_bool": _s("boolean"), "c_int2": _s("int16"),
        "c_int4": _s("int32", False), "c_int8": _s("int64"),
        "c_float4": _s("float"), "c_float8": _s("double"),
        "c_text": _s("string"), "c_varchar": _s("string"), "c_char": _s("string"),
        "c_tstz": _s("string", name="io.debezium.time.ZonedTimestamp"),
        "c_timetz": _s("string", name="io.debezium.time.ZonedTime"),
        "c_timetz2": _s("string", name="io.debezium.time.ZonedTime"),
        "c_uuid": _s("string", name="io.debezium.data.Uuid"),
        "c_json": _s("string", name="io.debezium.data.Json"),
        "c_jsonb": _s("string", name="io.debezium.data.Json"),
        "c_oid": _s("int64"), "c_null": _s("string"),
    }
    v = {
        "id": 1, "c_bool": True, "c_int2": -2, "c_int4": 2147483647,
        "c_int8": 9223372036854775807, "c_float4": 1.5, "c_float8": -2.25,
        "c_text": "hello", "c_varchar": "vé", "c_char": "ab ",
        # GMT, ISO-8601 (DateTimeFormatter.ISO_OFFSET_DATE_TIME / ISO_OFFSET_TIME)
        "c_tstz": "2024-01-02T01:04:05.5Z", "c_timetz": "11:14:15Z",
        "c_timetz2": "02:00:00.25Z",
        "c_uuid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "c_json": '{"a": [1, 2]}', "c_jsonb": '{"b": null}',
        "c_oid": 12345, "c_null": None,
    }
    def dec_schema(scale, precision):
        return _s("bytes", name="org.apache.kafka.connect.data.Decimal",
                  parameters={"scale": str(scale),
                              "connect.decimal.precision": str(precision)})
    if dec == "precise":
        s.update(c_num=dec_schema(2, 10), c_numneg=dec_schema(2, 10),
                 c_num0=dec_schema(0, 5),
                 c_numvar={"type": "struct", "optional": True,
                           "name": "io.debezium.data.VariableScaleDecimal",
                           "version": 1, "doc": "Variable scaled decimal",
                           "fields": [{"type": "int32", "optional": False, "field": "scale"},
                                      {"type": "bytes", "optional": False, "field": "value"}]})
        # big-endian two's-complement unscaled value, base64 in JSON
        v.update(c_num=base64.b64encode(b"\x04\xd2").decode(),      # 1234
                 c_numneg=base64.b64encode(b"\xff").decode(),       # -1
                 c_num0=base64.b64encode(b"\x07").decode(),         # 7
                 # 1.50 without its trailing zero (stripTrailingZeros): 15
                 c_numvar={"scale": 1,
                           "value": base64.b64encode(b"\x0f").decode()})
    elif dec == "double":
        for c in ("c_num", "c_numneg", "c_num0", "c_numvar"):
            s[c] = _s("double")
        v.update(c_num=12.34, c_numneg=-0.01, c_num0=7.0, c_numvar=1.5)
    else:
        for c in ("c_num", "c_numneg", "c_num0", "c_numvar"):
            s[c] = _s("string")
        v.update(c_num="12.34", c_numneg="-0.01", c_num0="7", c_numvar="1.50")
    if mode == "double":  # with time.precision.mode=connect
        s.update(c_date=_s("int32", name="org.apache.kafka.connect.data.Date"),
                 c_time=_s("int32", name="org.apache.kafka.connect.data.Time"),
                 c_time3=_s("int32", name="org.apache.kafka.connect.data.Time"),
                 c_ts=_s("int64", name="org.apache.kafka.connect.data.Timestamp"),
                 c_ts3=_s("int64", name="org.apache.kafka.connect.data.Timestamp"))
        v.update(c_date=_days(2024, 2, 29), c_time=GOLD_TIME_US // 1000,
                 c_time3=GOLD_TIME_US // 1000,
                 c_ts=(GOLD_EPOCH_US + 123456) // 1000,
                 c_ts3=(GOLD_EPOCH_US + 123000) // 1000)
    else:  # adaptive (the default)
        s.update(c_date=_s("int32", name="io.debezium.time.Date"),
                 c_time=_s("int64", name="io.debezium.time.MicroTime"),
                 c_time3=_s("int32", name="io.debezium.time.Time"),
                 c_ts=_s("int64", name="io.debezium.time.MicroTimestamp"),
                 c_ts3=_s("int64", name="io.debezium.time.Timestamp"))
        v.update(c_date=_days(2024, 2, 29), c_time=GOLD_TIME_US,
                 c_time3=GOLD_TIME_US // 1000,
                 c_ts=GOLD_EPOCH_US + 123456, c_ts3=(GOLD_EPOCH_US + 123000) // 1000)
    # binary.handling.mode: bytes (default), base64, hex
    if mode == "precise":
        s["c_bytea"] = _s("bytes")
        v["c_bytea"] = base64.b64encode(b"\x00\xff\x10").decode()
    elif mode == "double":
        s["c_bytea"] = _s("string")
        v["c_bytea"] = base64.b64encode(b"\x00\xff\x10").decode()
    else:
        s["c_bytea"] = _s("string")
        v["c_bytea"] = "00ff10"
    return s, v


GOLD_MODES = {
    "precise": {},
    "double": {"decimal.handling.mode": "double", "time.precision.mode": "connect",
               "binary.handling.mode": "base64"},
    "string": {"decimal.handling.mode": "string", "binary.handling.mode": "hex"},
}


@pytest.mark.parametrize("mode", list(GOLD_MODES))
def test_golden_types_json_with_schemas(mode):
    """Acceptance 2's golden test: every type in the mapping, JsonConverter
    with schemas.enable=true, compared field by field."""
    db = "gold_" + mode
    fresh_db(db)
    psql(db, "SET TIME ZONE 'Europe/Berlin'", GOLD_DDL, GOLD_ROW)
    prefix = unique("gold" + mode).replace("-", "_")  # topics outlive reruns
    cfg = seed_config(db, transforms=None, transforms__unwrap__type=None,
                      **{"database.server.name": prefix, "slot.name": "gold_" + mode,
                         "publication.name": "gold_pub",
                         "value.converter.schemas.enable": "true",
                         "key.converter": "org.apache.kafka.connect.json.JsonConverter",
                         "key.converter.schemas.enable": "true",
                         **GOLD_MODES[mode]})
    cfg["name"] = "gold-" + mode
    code, body = post(cfg)
    assert code == 201, body
    try:
        topic = f"{prefix}.public.gold"
        snap = consume(topic, 1)
        assert len(snap) == 1
        wait_state(cfg["name"], "RUNNING")
        psql(db, GOLD_ROW.replace("VALUES (1,", "VALUES (2,"))
        msgs = consume(topic, 2)
        assert len(msgs) == 2
        exp_s, exp_v = gold_expected(mode)
        for m, op, rid in ((msgs[0], "r", 1), (msgs[1], "c", 2)):
            key = json.loads(m.key())
            assert key == {"schema": {"type": "struct", "optional": False,
                                      "name": f"{prefix}.public.gold.Key",
                                      "fields": [{"type": "int32", "optional": False,
                                                  "field": "id"}]},
                           "payload": {"id": rid}}
            val = json.loads(m.value())
            env = val["schema"]
            assert env["type"] == "struct" and env["optional"] is False
            assert env["name"] == f"{prefix}.public.gold.Envelope"
            names = [f["field"] for f in env["fields"]]
            assert names[:4] == ["before", "after", "source", "op"]
            assert "ts_ms" in names and "transaction" in names
            for f in env["fields"][:2]:
                assert f["type"] == "struct" and f["optional"] is True
                assert f["name"] == f"{prefix}.public.gold.Value"
            after_s = env["fields"][1]
            # column order is the table's
            assert [f["field"] for f in after_s["fields"]] == GOLD_COLS
            diffs = []
            for f in after_s["fields"]:
                got = dict(f)
                name = got.pop("field")
                if got != exp_s[name]:
                    diffs.append(f"schema of {name}: got {got}, want {exp_s[name]}")
            p = val["payload"]
            assert p["op"] == op and p["before"] is None
            want = dict(exp_v, id=rid)
            assert set(p["after"]) == set(want)
            for name, ev in want.items():
                gv = p["after"][name]
                if gv != (pytest.approx(ev) if isinstance(ev, float) else ev):
                    diffs.append(f"value of {name}: got {gv!r}, want {ev!r}")
            assert not diffs, "\n".join(diffs)
    finally:
        http("DELETE", "/connectors/" + cfg["name"])
