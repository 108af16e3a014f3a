"""Change data capture with Confluent's AvroConverter: table topics whose keys
and values are Avro in Confluent's wire format (magic 0, schema id, Avro
binary), their schemas registered in samsa's own Schema Registry under
<topic>-key and <topic>-value as Debezium + AvroConverter register them, and
read back with confluent-kafka's AvroDeserializer.
"""
import json
import os
import struct
import subprocess
import time
import urllib.error
import urllib.request

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from samsa_client import bootstrap, unique
from test_cdc import (fresh_db, http, make_students, pg_params, post, psql,
                      seed_config)

AVRO = "io.confluent.connect.avro.AvroConverter"
REGISTRY = os.environ.get("SAMSA_REGISTRY_URL", "").rstrip("/")

# Debezium 1.9's io.debezium.connector.postgresql.Source as AvroData writes
# it (fields in SourceInfo order; snapshot is an optional Enum with default
# "false", so its union puts the string first and the field defaults to it).
SOURCE = {
    "type": "record", "name": "Source",
    "namespace": "io.debezium.connector.postgresql",
    "fields": [
        {"name": "version", "type": "string"},
        {"name": "connector", "type": "string"},
        {"name": "name", "type": "string"},
        {"name": "ts_ms", "type": "long"},
        {"name": "snapshot", "type": [
            {"type": "string", "connect.version": 1,
             "connect.parameters": {"allowed": "true,last,false,incremental"},
             "connect.default": "false", "connect.name": "io.debezium.data.Enum"},
            "null"], "default": "false"},
        {"name": "db", "type": "string"},
        {"name": "sequence", "type": ["null", "string"], "default": None},
        {"name": "schema", "type": "string"},
        {"name": "table", "type": "string"},
        {"name": "txId", "type": ["null", "long"], "default": None},
        {"name": "lsn", "type": ["null", "long"], "default": None},
        {"name": "xmin", "type": ["null", "long"], "default": None},
    ],
    "connect.name": "io.debezium.connector.postgresql.Source",
}


def admission_value(ns):
    """<ns>.Value for the seed's admission table: the key column is NOT NULL
    (plain int), the others optional (["null", T], default null)."""
    return {
        "type": "record", "name": "Value", "namespace": ns,
        "fields": [
            {"name": "student_id", "type": "int"},
            {"name": "gre", "type": ["null", "int"], "default": None},
            {"name": "toefl", "type": ["null", "int"], "default": None},
            {"name": "cpga", "type": ["null", "double"], "default": None},
            {"name": "admit_chance", "type": ["null", "double"], "default": None},
        ],
        "connect.name": ns + ".Value",
    }


def registry(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        REGISTRY + path, data=data, method=method,
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def drop_topics(*names):
    """Deletes topics an earlier test (test_cdc.py's JSON run of the same
    seed config) left under the seed's names."""
    a = AdminClient({"bootstrap.servers": bootstrap()})
    existing = a.list_topics(timeout=10).topics
    gone = [n for n in names if n in existing]
    if gone:
        for f in a.delete_topics(gone, operation_timeout=30).values():
            f.result()
    deadline = time.time() + 30
    while time.time() < deadline:
        if not set(names) & set(a.list_topics(timeout=10).topics):
            return
        time.sleep(0.2)
    raise AssertionError(f"topics {names} not deleted")


def remove(connector, slot):
    """Deletes the connector and its replication slot (the test Postgres
    has 10, and every test file's connectors share them)."""
    http("DELETE", f"/connectors/{connector}")
    host, port = pg_params()
    for _ in range(150):
        q = (f"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}'")
        psql("postgres", "SELECT pg_drop_replication_slot(slot_name) FROM "
             f"pg_replication_slots WHERE slot_name = '{slot}' AND NOT active")
        left = subprocess.run(["psql", "-X", "-tA", "-h", host, "-p", port, "-U",
                               "postgres", "-d", "postgres", "-c", q],
                              capture_output=True, text=True, check=True).stdout
        if left.strip() == "0":
            return
        time.sleep(0.2)
    raise AssertionError(f"slot {slot} still in use")


def reset(*topics):
    """No topic and no subjects left by an earlier run of the same test."""
    drop_topics(*topics)
    for t in topics:
        for s in (t + "-key", t + "-value"):
            registry("DELETE", f"/subjects/{s}")
            registry("DELETE", f"/subjects/{s}?permanent=true")
            registry("DELETE", f"/config/{s}")


def consume(topic, n, timeout=60):
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": unique("cdca"),
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


def wait_state(name, state, timeout=60):
    deadline = time.time() + timeout
    st = None
    while time.time() < deadline:
        code, st = http("GET", f"/connectors/{name}/status")
        if code == 200 and st["tasks"] and st["tasks"][0]["state"] == state:
            return st
        time.sleep(0.3)
    raise AssertionError(f"{name} never became {state}: {st}")


class Avro:
    """AvroDeserializer with SchemaRegistryClient on samsa's registry."""

    def __init__(self):
        self.sr = SchemaRegistryClient({"url": REGISTRY})
        self.deser = AvroDeserializer(self.sr)

    def value(self, m):
        if m.value() is None:
            return None
        return self.deser(m.value(), SerializationContext(m.topic(), MessageField.VALUE))

    def key(self, m):
        if m.key() is None:
            return None
        return self.deser(m.key(), SerializationContext(m.topic(), MessageField.KEY))


def schema_id(raw):
    magic, sid = struct.unpack(">bI", raw[:5])
    assert magic == 0
    return sid


def latest(subject):
    code, v = registry("GET", f"/subjects/{subject}/versions/latest")
    assert code == 200, v
    return v


def test_seed_avro_unwrap():
    """postgres-source.json as the seed has it (StringConverter keys,
    AvroConverter values, UnwrapFromEnvelope): snapshot, insert, update,
    delete (dropped by the 1.x transform), an added column (a second
    version under the subject), read with AvroDeserializer."""
    db = "students_avro"
    http("DELETE", "/connectors/postgres-source")  # its slot goes with it
    make_students(db)
    reset("dbserver1.public.admission", "dbserver1.public.research")
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                           "data", "seed-demo", "postgres-source.json")) as f:
        seed = json.load(f)["config"]
    assert seed["value.converter"] == AVRO
    cfg = seed_config(db, **{"value.converter": AVRO,
                             "slot.name": "avro_seed_slot"})
    for k in ("key.converter", "value.converter.schema.registry.url",
              "transforms", "transforms.unwrap.type"):
        assert cfg["config"][k] == seed[k]
    code, body = post(cfg)
    assert code == 201, body
    avro = Avro()
    adm = consume("dbserver1.public.admission", 300)
    res = consume("dbserver1.public.research", 300)
    assert len(adm) == 300 and len(res) == 300
    assert adm[0].key() == b"Struct{student_id=1}"
    rows = [avro.value(m) for m in adm]
    assert rows[0] == {"student_id": 1, "gre": 337, "toefl": 118, "cpga": 9.65,
                       "admit_chance": 0.92}
    assert [r["student_id"] for r in rows] == list(range(1, 301))
    assert rows[1] == {"student_id": 2, "gre": 324, "toefl": 107, "cpga": 8.87,
                       "admit_chance": 0.76}
    rr = [avro.value(m) for m in res]
    assert rr[0] == {"student_id": 1, "rating": 4, "research": 1}
    assert set(rr[0]) == {"student_id", "rating", "research"}
    # One schema per subject, every record framed with its id.
    v1 = latest("dbserver1.public.admission-value")
    assert v1["version"] == 1
    assert {schema_id(m.value()) for m in adm} == {v1["id"]}
    r1 = latest("dbserver1.public.research-value")
    assert {schema_id(m.value()) for m in res} == {r1["id"]}
    code, _ = registry("GET", "/subjects/dbserver1.public.admission-key/versions")
    assert code == 404  # StringConverter keys register nothing

    wait_state("postgres-source", "RUNNING")
    psql(db, "INSERT INTO admission VALUES (1000, 300, 100, 8.5, 0.5)",
         "UPDATE admission SET gre = 301, admit_chance = NULL WHERE student_id = 1000",
         "DELETE FROM admission WHERE student_id = 1000",
         "INSERT INTO admission VALUES (1001, 310, 101, 8.6, 0.6)",
         "UPDATE research SET rating = 5 WHERE student_id = 2")
    msgs = consume("dbserver1.public.admission", 303)[300:]
    assert [m.key() for m in msgs] == [b"Struct{student_id=1000}"] * 2 + \
        [b"Struct{student_id=1001}"]
    assert [avro.value(m) for m in msgs] == [
        {"student_id": 1000, "gre": 300, "toefl": 100, "cpga": 8.5, "admit_chance": 0.5},
        {"student_id": 1000, "gre": 301, "toefl": 100, "cpga": 8.5, "admit_chance": None},
        {"student_id": 1001, "gre": 310, "toefl": 101, "cpga": 8.6, "admit_chance": 0.6}]
    assert all(m.value() is not None for m in msgs)  # the delete is dropped
    for m in msgs:
        assert len(dict(m.headers())["__samsa.lsn"]) == 8
    upd = consume("dbserver1.public.research", 301)[300:]
    assert avro.value(upd[0]) == {"student_id": 2, "rating": 5, "research": 1}

    # ALTER TABLE ADD COLUMN: a second, compatible version; old records
    # keep their id, new ones carry the column.
    psql(db, "ALTER TABLE admission ADD COLUMN notes text",
         "INSERT INTO admission VALUES (1002, 320, 105, 9.0, 0.8, 'late')")
    m = consume("dbserver1.public.admission", 304)[303]
    v2 = latest("dbserver1.public.admission-value")
    assert v2["version"] == 2 and v2["id"] != v1["id"]
    assert schema_id(m.value()) == v2["id"]
    assert avro.value(m) == {"student_id": 1002, "gre": 320, "toefl": 105,
                             "cpga": 9.0, "admit_chance": 0.8, "notes": "late"}
    code, versions = registry("GET", "/subjects/dbserver1.public.admission-value/versions")
    assert versions == [1, 2]
    s2 = json.loads(v2["schema"])
    assert s2[1]["fields"][-1] == {"name": "notes", "type": ["null", "string"],
                                   "default": None}
    # The same table again (a restart of the task): no new version.
    code, _ = http("POST", "/connectors/postgres-source/restart")
    assert code in (200, 204)
    psql(db, "INSERT INTO admission VALUES (1003, 321, 106, 9.1, 0.81, 'x')")
    m = consume("dbserver1.public.admission", 305)[304]
    assert avro.value(m)["student_id"] == 1003
    assert schema_id(m.value()) == v2["id"]
    assert registry("GET", "/subjects/dbserver1.public.admission-value/versions")[1] == [1, 2]
    wait_state("postgres-source", "RUNNING")
    remove("postgres-source", "avro_seed_slot")


def test_golden_admission_value_schema():
    """The value schema registered for the seed's admission table (after
    test_seed_avro_unwrap), field by field as AvroData writes what
    ExtractNewRecordState leaves: the optional after struct, so a union of
    null and the Value record, named after Debezium's Connect name."""
    code, v = registry("GET", "/subjects/dbserver1.public.admission-value/versions/1")
    assert code == 200, v
    expected = ["null", admission_value("dbserver1.public.admission")]
    assert json.loads(v["schema"]) == expected
    # Byte for byte as Avro Java's Schema.toString() prints it.
    assert v["schema"] == json.dumps(expected, separators=(",", ":"))
    code, r = registry("GET", "/subjects/dbserver1.public.research-value/versions/1")
    assert json.loads(r["schema"]) == ["null", {
        "type": "record", "name": "Value", "namespace": "dbserver1.public.research",
        "fields": [{"name": "student_id", "type": "int"},
                   {"name": "rating", "type": ["null", "int"], "default": None},
                   {"name": "research", "type": ["null", "int"], "default": None}],
        "connect.name": "dbserver1.public.research.Value"}]


def test_envelope_avro_keys_and_values():
    """No transform, AvroConverter for keys and values: the envelope
    (<topic>.Envelope with before/after as <topic>.Value, source, op, ts_ms,
    transaction) and the key record; delete then tombstone."""
    db = "students_avroenv"
    http("DELETE", "/connectors/avroenv-source")
    make_students(db)
    cfg = seed_config(db, transforms=None, transforms__unwrap__type=None, **{
        "database.server.name": "avroenv", "slot.name": "avroenv_slot",
        "publication.name": "avroenv_pub", "publication.autocreate.mode": "filtered",
        "table.include.list": "public.admission",
        "key.converter": AVRO, "key.converter.schema.registry.url": "http://nowhere:8081",
        "value.converter": AVRO, "value.converter.schema.registry.url": "http://nowhere:8081"})
    cfg["name"] = "avroenv-source"
    reset("avroenv.public.admission")
    code, body = post(cfg)
    assert code == 201, body
    avro = Avro()
    topic = "avroenv.public.admission"
    snap = consume(topic, 300)
    assert len(snap) == 300
    k = avro.key(snap[0])
    assert k == {"student_id": 1}
    v = avro.value(snap[0])
    assert v["op"] == "r" and v["before"] is None
    assert v["after"] == {"student_id": 1, "gre": 337, "toefl": 118, "cpga": 9.65,
                          "admit_chance": 0.92}
    assert v["source"]["connector"] == "postgresql" and v["source"]["db"] == db
    assert v["source"]["table"] == "admission" and v["source"]["schema"] == "public"
    assert v["source"]["snapshot"] == "true"
    assert v["source"]["name"] == "avroenv"
    assert v["transaction"] is None and v["ts_ms"] > 0
    # Debezium marks the snapshot's very last record "last".
    assert [avro.value(m)["source"]["snapshot"] for m in snap] == \
        ["true"] * 299 + ["last"]

    # The registered schemas: key record, envelope with named types once.
    ns = "avroenv.public.admission"
    key = json.loads(latest(topic + "-key")["schema"])
    assert key == {"type": "record", "name": "Key", "namespace": ns,
                   "fields": [{"name": "student_id", "type": "int"}],
                   "connect.name": ns + ".Key"}
    env = json.loads(latest(topic + "-value")["schema"])
    assert env == {
        "type": "record", "name": "Envelope", "namespace": ns,
        "fields": [
            # Value sits in the envelope's namespace: Avro Java leaves it
            # out, and names it alone the second time.
            {"name": "before", "type": ["null", {k2: v2 for k2, v2 in admission_value(ns).items()
                                                 if k2 != "namespace"}], "default": None},
            {"name": "after", "type": ["null", "Value"], "default": None},
            {"name": "source", "type": SOURCE},
            {"name": "op", "type": "string"},
            {"name": "ts_ms", "type": ["null", "long"], "default": None},
            {"name": "transaction", "type": ["null", {
                "type": "record", "name": "ConnectDefault",
                "namespace": "io.confluent.connect.avro",
                "fields": [{"name": "id", "type": "string"},
                           {"name": "total_order", "type": "long"},
                           {"name": "data_collection_order", "type": "long"}]}],
             "default": None}],
        "connect.name": ns + ".Envelope"}

    # Streaming: c, u, d + tombstone, in commit order.
    wait_state("avroenv-source", "RUNNING")
    psql(db, "INSERT INTO admission VALUES (2000, 300, 100, 8.5, 0.5)",
         "UPDATE admission SET toefl = 99 WHERE student_id = 2000",
         "DELETE FROM admission WHERE student_id = 2000")
    msgs = consume(topic, 304)[300:]
    assert len(msgs) == 4
    vals = [avro.value(m) for m in msgs]
    assert [x["op"] if x else None for x in vals] == ["c", "u", "d", None]
    assert vals[0]["after"]["gre"] == 300 and vals[0]["source"]["snapshot"] == "false"
    assert vals[0]["source"]["txId"] > 0 and vals[0]["source"]["lsn"] > 0
    assert vals[1]["after"]["toefl"] == 99
    assert vals[2]["before"] == {"student_id": 2000, "gre": None, "toefl": None,
                                 "cpga": None, "admit_chance": None}
    assert vals[2]["after"] is None
    assert msgs[3].value() is None
    assert [avro.key(m) for m in msgs] == [{"student_id": 2000}] * 4
    lsns = [int.from_bytes(dict(m.headers())["__samsa.lsn"], "big") for m in msgs]
    assert lsns == sorted(lsns)

    # An incompatible change fails the connector with the registry's reason.
    code, _ = registry("PUT", f"/config/{topic}-value", {"compatibility": "BACKWARD"})
    assert code == 200
    psql(db, "ALTER TABLE admission ALTER COLUMN gre TYPE text",
         "INSERT INTO admission VALUES (2001, '300', 100, 8.5, 0.5)")
    st = wait_state("avroenv-source", "FAILED")
    trace = st["tasks"][0]["trace"]
    assert "incompatible" in trace and topic + "-value" in trace, trace
    assert "40901" in trace
    assert len(consume(topic, 305, timeout=5)) == 304  # nothing written past it
    remove("avroenv-source", "avroenv_slot")


def test_unwrap_rewrite_avro_types():
    """ExtractNewRecordState with delete.handling.mode=rewrite and
    add.fields, Avro keys and values, and the type mapping in Avro:
    decimals as bytes+decimal, Debezium's time types, int16, float."""
    db = "avro_types"
    http("DELETE", "/connectors/avrotypes-source")
    fresh_db(db)
    psql(db, "CREATE TABLE t (id int PRIMARY KEY, b bool, s smallint, l bigint, "
             "r real, n numeric(10,2), v varchar(10), d date, ts timestamp, "
             "tz timestamptz, by bytea, vn numeric)",
         "INSERT INTO t VALUES (1, true, 2, 3, 1.5, 12.34, 'x', '1970-01-11', "
         "'1970-01-01 00:00:01.5', '2024-01-02 03:04:05+00', '\\x0102', -1.5)",
         "CREATE TABLE nokey (a int NOT NULL)", "INSERT INTO nokey VALUES (7)")
    cfg = seed_config(db, **{
        "database.server.name": "avrotypes", "slot.name": "avrotypes_slot",
        "publication.name": "avrotypes_pub",
        "key.converter": AVRO, "key.converter.schema.registry.url": "http://x",
        "value.converter": AVRO,
        "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState",
        "transforms.unwrap.delete.handling.mode": "rewrite",
        "transforms.unwrap.drop.tombstones": "false",
        "transforms.unwrap.add.fields": "op,source.ts_ms"})
    cfg["name"] = "avrotypes-source"
    reset("avrotypes.public.t", "avrotypes.public.nokey")
    code, body = post(cfg)
    assert code == 201, body
    avro = Avro()
    topic = "avrotypes.public.t"
    m = consume(topic, 1)[0]
    v = avro.value(m)
    from decimal import Decimal
    assert v["id"] == 1 and v["b"] is True and v["s"] == 2 and v["l"] == 3
    assert v["r"] == 1.5 and v["n"] == Decimal("12.34") and v["v"] == "x"
    assert v["d"] == 10 and v["ts"] == 1500000
    assert v["tz"] == "2024-01-02T03:04:05Z" and v["by"] == b"\x01\x02"
    assert v["vn"] == {"scale": 1, "value": (-15).to_bytes(1, "big", signed=True)}
    assert v["__op"] == "r" and v["__deleted"] == "false"
    assert v["__source_ts_ms"] > 0
    sch = json.loads(latest(topic + "-value")["schema"])[1]
    f = {x["name"]: x["type"] for x in sch["fields"]}
    assert f["s"] == ["null", {"type": "int", "connect.type": "int16"}]
    assert f["r"] == ["null", "float"]
    assert f["n"] == ["null", {
        "type": "bytes", "scale": 2, "precision": 10, "connect.version": 1,
        "connect.parameters": {"scale": "2", "connect.decimal.precision": "10"},
        "connect.name": "org.apache.kafka.connect.data.Decimal",
        "logicalType": "decimal"}]
    assert f["d"] == ["null", {"type": "int", "connect.version": 1,
                               "connect.name": "io.debezium.time.Date"}]
    assert f["ts"] == ["null", {"type": "long", "connect.version": 1,
                                "connect.name": "io.debezium.time.MicroTimestamp"}]
    assert f["tz"] == ["null", {"type": "string", "connect.version": 1,
                                "connect.name": "io.debezium.time.ZonedTimestamp"}]
    assert f["vn"] == ["null", {
        "type": "record", "name": "VariableScaleDecimal", "namespace": "io.debezium.data",
        "fields": [{"name": "scale", "type": "int"}, {"name": "value", "type": "bytes"}],
        "connect.doc": "Variable scaled decimal", "connect.version": 1,
        "connect.name": "io.debezium.data.VariableScaleDecimal"}]
    assert f["__deleted"] == ["null", "string"]
    # No primary key: null keys, and no key subject.
    nk = consume("avrotypes.public.nokey", 1)[0]
    assert nk.key() is None and avro.value(nk)["a"] == 7
    assert registry("GET", "/subjects/avrotypes.public.nokey-key/versions")[0] == 404
    assert json.loads(latest("avrotypes.public.nokey-value")["schema"])[1]["fields"][0] == \
        {"name": "a", "type": "int"}
    wait_state("avrotypes-source", "RUNNING")
    psql(db, "DELETE FROM t WHERE id = 1")
    msgs = consume(topic, 3)[1:]
    assert len(msgs) == 2
    d = avro.value(msgs[0])
    assert d["id"] == 1 and d["__deleted"] == "true" and d["__op"] == "d"
    assert msgs[1].value() is None and avro.key(msgs[1]) == {"id": 1}
    remove("avrotypes-source", "avrotypes_slot")


def test_avro_config_errors():
    code, body = http("PUT", "/connector-plugins/io.debezium.connector.postgresql."
                      "PostgresConnector/config/validate",
                      {"connector.class": "io.debezium.connector.postgresql.PostgresConnector",
                       "database.hostname": "h", "database.user": "u",
                       "database.dbname": "d", "topic.prefix": "p",
                       "value.converter": AVRO})
    assert code == 200 and body["error_count"] == 1
    errs = [c["value"]["errors"] for c in body["configs"] if c["value"]["errors"]]
    assert "schema.registry.url" in errs[0][0]
