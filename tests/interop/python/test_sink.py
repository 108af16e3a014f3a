"""Sink topics: JDBC sink connector configs POSTed to samsa's Kafka Connect
REST surface, applied by samsa itself to Postgres tables.

Records are produced by confluent-kafka-python (Avro values through its
SchemaRegistryClient/AvroSerializer against samsa's registry); the target
tables live in databases of their own on the test Postgres.
"""
import json
import os
import subprocess
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import (MessageField, SerializationContext,
                                           StringSerializer)

from samsa_client import admin_client, bootstrap, create_topic, unique
from test_cdc import fresh_db, http, pg_params

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = os.path.join(HERE, "..", "..", "data", "seed-demo")
REGISTRY = os.environ.get("SAMSA_REGISTRY_URL", "http://127.0.0.1:8081")

# The value schema ksqlDB 5.x registers for RESEARCH_AVE_BOOST.
KSQL_SCHEMA = json.dumps({
    "type": "record", "name": "KsqlDataSourceSchema",
    "namespace": "io.confluent.ksql.avro_schemas",
    "fields": [
        {"name": "RESEARCH", "type": ["null", "int"], "default": None},
        {"name": "AVE_CHANCE", "type": ["null", "double"], "default": None},
    ]})


def q(db, sql):
    """Rows of sql as lists of strings (psql's unaligned output)."""
    host, port = pg_params()
    out = subprocess.run(["psql", "-X", "-q", "-At", "-F", "|", "-v",
                          "ON_ERROR_STOP=1", "-h", host, "-p", port, "-U",
                          "postgres", "-d", db, "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("|") for line in out.splitlines() if line]


def jdbc_url(db):
    host, port = pg_params()
    return f"jdbc:postgresql://{host}:{port}/{db}?user=postgres&password=postgres"


def seed_sink(db, topic, **over):
    """postgres-sink.json with the database (and topic) adjusted."""
    with open(os.path.join(SEED, "postgres-sink.json")) as f:
        c = json.load(f)
    c["config"]["connection.url"] = jdbc_url(db)
    c["config"]["topics"] = topic
    c["config"]["value.converter.schema.registry.url"] = REGISTRY
    for k, v in over.items():
        k = k.replace("__", ".")
        if v is None:
            c["config"].pop(k, None)
        else:
            c["config"][k] = v
    return c


def wait_rows(db, sql, want, timeout=60):
    deadline = time.time() + timeout
    got = None
    while time.time() < deadline:
        try:
            got = q(db, sql)
            if got == want:
                return got
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{sql}: wanted {want}, last saw {got}")


def status(name):
    code, st = http("GET", f"/connectors/{name}/status")
    assert code == 200, st
    return st


def wait_task(name, state, timeout=60):
    deadline = time.time() + timeout
    st = None
    while time.time() < deadline:
        st = status(name)
        if st["tasks"] and st["tasks"][0]["state"] == state:
            return st
        time.sleep(0.3)
    raise AssertionError(f"{name} never became {state}: {st}")


def avro_producer(topic):
    sr = SchemaRegistryClient({"url": REGISTRY})
    ser = AvroSerializer(sr, KSQL_SCHEMA)
    p = Producer({"bootstrap.servers": bootstrap()})
    ks = StringSerializer("utf_8")

    def send(key, value):
        ctx = SerializationContext(topic, MessageField.VALUE)
        p.produce(topic, key=ks(key) if key is not None else None,
                  value=ser(value, ctx) if value is not None else None)
    return p, send


def post(cfg):
    http("DELETE", "/connectors/" + cfg["name"])
    code, body = http("POST", "/connectors", cfg)
    assert code == 201, body
    return body


def test_seed_sink_typed_upsert_and_tombstones():
    """Acceptance 2: the seed's postgres-sink.json, RESEARCH_AVE_BOOST with
    string keys "0"/"1" and Avro values: typed columns, upserts, and
    tombstones that delete once delete.enabled=true."""
    db = "sinkseed"
    fresh_db(db)
    topic = "RESEARCH_AVE_BOOST"
    admin = admin_client()
    admin.delete_topics([topic])
    time.sleep(0.5)
    create_topic(admin, topic, 1)
    p, send = avro_producer(topic)
    send("0", {"RESEARCH": 0, "AVE_CHANCE": 0.6}) 
    send("1", {"RESEARCH": 1, "AVE_CHANCE": 0.8})
    send("0", {"RESEARCH": 0, "AVE_CHANCE": 0.6519})
    assert p.flush(30) == 0

    cfg = seed_sink(db, topic)
    cfg["name"] = "postgres-sink"
    body = post(cfg)
    assert body["type"] == "sink"
    sql = 'SELECT "RESEARCH", "AVE_CHANCE" FROM "RESEARCH_AVE_BOOST" ORDER BY 1'
    wait_rows(db, sql, [["0", "0.6519"], ["1", "0.8"]])
    # typed columns where the seed got text, RESEARCH the primary key
    cols = q(db, "SELECT column_name, data_type, is_nullable FROM "
             "information_schema.columns WHERE table_name = "
             "'RESEARCH_AVE_BOOST' ORDER BY ordinal_position")
    assert cols == [["RESEARCH", "integer", "NO"],
                    ["AVE_CHANCE", "double precision", "YES"]]
    pk = q(db, "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON "
           "a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE "
           "i.indrelid = '\"RESEARCH_AVE_BOOST\"'::regclass AND i.indisprimary")
    assert pk == [["RESEARCH"]]
    # the seed README's query, without the cast
    assert q(db, 'SELECT "AVE_CHANCE" FROM "RESEARCH_AVE_BOOST" '
             'WHERE "RESEARCH" = 0') == [["0.6519"]]

    # updates upsert
    send("0", {"RESEARCH": 0, "AVE_CHANCE": 0.6349})
    assert p.flush(30) == 0
    wait_rows(db, sql, [["0", "0.6349"], ["1", "0.8"]])

    st = status("postgres-sink")
    assert st["type"] == "sink"
    assert st["tasks"][0]["state"] == "RUNNING"
    offs = q(db, "SELECT topic, partition, next_offset FROM samsa_sink_offsets "
             "WHERE connector = 'postgres-sink'")
    assert offs == [[topic, "0", "4"]]
    code, tl = http("GET", "/connectors/postgres-sink/topics")
    assert code == 200 and tl["postgres-sink"]["topics"] == [topic]

    # quote.sql.identifiers=never: the names fold to lower case, and the
    # seed README's own query works as written (the cast now a no-op)
    low = seed_sink(db, topic, quote__sql__identifiers="never")
    low["name"] = "postgres-sink-lower"
    post(low)
    wait_rows(db, "SELECT ave_chance FROM research_ave_boost "
              "WHERE CAST(research as INT)=0", [["0.6349"]])
    assert q(db, "SELECT column_name, data_type FROM information_schema.columns "
             "WHERE table_name = 'research_ave_boost' ORDER BY ordinal_position"
             ) == [["research", "integer"], ["ave_chance", "double precision"]]
    assert http("DELETE", "/connectors/postgres-sink-lower")[0] == 204

    # tombstones delete once delete.enabled=true (with pk.mode record_key)
    new = dict(cfg["config"])
    new["delete.enabled"] = "true"
    code, body = http("PUT", "/connectors/postgres-sink/config", new)
    assert code == 200, body
    send("1", None)
    assert p.flush(30) == 0
    wait_rows(db, sql, [["0", "0.6349"]])
    send("1", {"RESEARCH": 1, "AVE_CHANCE": 0.9})
    send("0", None)
    assert p.flush(30) == 0
    wait_rows(db, sql, [["1", "0.9"]])
    wait_rows(db, "SELECT next_offset FROM samsa_sink_offsets WHERE "
              "connector = 'postgres-sink'", [["7"]])
    assert http("DELETE", "/connectors/postgres-sink")[0] == 204
    admin.delete_topics([topic])


ROW_SCHEMA = json.dumps({
    "type": "record", "name": "Row", "namespace": "sinktest",
    "fields": [{"name": "name", "type": "string"},
               {"name": "n", "type": "int"}]})


def row_producer(topic, schema=ROW_SCHEMA):
    sr = SchemaRegistryClient({"url": REGISTRY})
    ser = AvroSerializer(sr, schema)
    p = Producer({"bootstrap.servers": bootstrap()})

    def send(key, value, raw=None):
        ctx = SerializationContext(topic, MessageField.VALUE)
        v = raw if raw is not None else (
            ser(value, ctx) if value is not None else None)
        p.produce(topic, key=key.encode() if key is not None else None,
                  value=v)
    return p, send


def row_sink(name, db, topic, **over):
    c = {"connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
         "topics": topic, "connection.url": jdbc_url(db),
         "key.converter": "org.apache.kafka.connect.storage.StringConverter",
         "value.converter": "io.confluent.connect.avro.AvroConverter",
         "value.converter.schema.registry.url": "http://sr:8081",
         "auto.create": "true", "insert.mode": "upsert",
         "pk.mode": "record_key", "pk.fields": "name",
         "table.name.format": "rows"}
    for k, v in over.items():
        k = k.replace("__", ".")
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return {"name": name, "config": c}


# The Confluent wire format with a schema id nobody registered.
POISON = b"\x00" + (987654).to_bytes(4, "big") + b"\x06abc\x02"


def dlq_records(topic, n, timeout=60):
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": unique("dlq"),
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    out, deadline = [], time.time() + timeout
    while len(out) < n and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            out.append(m)
    c.close()
    return out


def test_poison_record_fails_then_dead_letters():
    """Acceptance 4: an unknown schema id in a Confluent-framed value.
    errors.tolerance=none: FAILED with the reason, nothing after it applied,
    also after a restart; reconfigured to errors.tolerance=all with a dead
    letter queue: the record is there with Connect's error headers and the
    rest is applied, each once."""
    db = "sinkpoison"
    fresh_db(db)
    topic = unique("poison")
    create_topic(admin_client(), topic, 1)
    p, send = row_producer(topic)
    for i, k in enumerate(["a", "b", "c"]):
        send(k, {"name": k, "n": i})
    send("x", None, raw=POISON)  # offset 3
    for i, k in enumerate(["d", "e", "a"]):
        send(k, {"name": k, "n": 10 + i})
    assert p.flush(30) == 0

    cfg = row_sink("poison", db, topic)
    post(cfg)
    st = wait_task("poison", "FAILED")
    trace = st["tasks"][0]["trace"]
    assert "987654" in trace and "DataException" in trace, trace
    assert "offset 3" in trace, trace
    sql = "SELECT name, n FROM rows ORDER BY name"
    wait_rows(db, sql, [["a", "0"], ["b", "1"], ["c", "2"]])
    assert q(db, "SELECT next_offset FROM samsa_sink_offsets WHERE "
             "connector = 'poison'") == [["3"]]
    # a restart resumes at the record and fails on it again
    assert http("POST", "/connectors/poison/restart")[0] == 204
    time.sleep(1)
    st = wait_task("poison", "FAILED")
    assert "987654" in st["tasks"][0]["trace"]
    assert q(db, sql) == [["a", "0"], ["b", "1"], ["c", "2"]]

    # errors.tolerance=all: the record goes to the dead letter queue
    dlq = unique("dlq")
    new = dict(cfg["config"])
    new.update({"errors.tolerance": "all",
                "errors.deadletterqueue.topic.name": dlq,
                "errors.deadletterqueue.context.headers.enable": "true"})
    code, body = http("PUT", "/connectors/poison/config", new)
    assert code == 200, body
    wait_rows(db, sql, [["a", "12"], ["b", "1"], ["c", "2"], ["d", "10"],
                        ["e", "11"]])
    wait_rows(db, "SELECT next_offset FROM samsa_sink_offsets WHERE "
              "connector = 'poison'", [["7"]])
    assert wait_task("poison", "RUNNING")["tasks"][0].get("trace") is None
    [m] = dlq_records(dlq, 1)
    assert m.key() == b"x" and m.value() == POISON
    h = {k: v.decode() for k, v in m.headers()}
    assert h["__connect.errors.topic"] == topic
    assert h["__connect.errors.partition"] == "0"
    assert h["__connect.errors.offset"] == "3"
    assert h["__connect.errors.connector.name"] == "poison"
    assert h["__connect.errors.task.id"] == "0"
    assert h["__connect.errors.stage"] == "VALUE_CONVERTER"
    assert h["__connect.errors.class.name"] == \
        "io.confluent.connect.avro.AvroConverter"
    assert h["__connect.errors.exception.class.name"] == \
        "org.apache.kafka.connect.errors.DataException"
    assert "987654" in h["__connect.errors.exception.message"]
    assert "DataException" in h["__connect.errors.exception.stacktrace"]
    assert http("DELETE", "/connectors/poison")[0] == 204


@pytest.mark.parametrize("batch", [None, "3"])
def test_rejected_row_fails_or_dead_letters(batch):
    """A record Postgres refuses (a CHECK constraint): the batch is replayed
    record by record; errors.tolerance=none stops at it, all sends it to
    the dead letter queue and applies the rest.  With batch.size 3 the
    units of the batches after it are already on their way when its unit
    fails: their fence must roll them back."""
    db = "sinkreject" + (batch or "")
    fresh_db(db)
    from test_cdc import psql
    psql(db, "CREATE TABLE rows (name text PRIMARY KEY, n int CHECK (n >= 0))")
    topic = unique("reject")
    create_topic(admin_client(), topic, 1)
    p, send = row_producer(topic)
    for i in range(20):
        send("k%02d" % i, {"name": "k%02d" % i, "n": -1 if i == 7 else i})
    assert p.flush(30) == 0
    cfg = row_sink("reject", db, topic, batch__size=batch)
    post(cfg)
    st = wait_task("reject", "FAILED")
    assert "check constraint" in st["tasks"][0]["trace"], st
    assert "offset 7" in st["tasks"][0]["trace"], st
    sql = "SELECT count(*), max(name) FROM rows"
    wait_rows(db, sql, [["7", "k06"]])
    assert q(db, "SELECT next_offset FROM samsa_sink_offsets") == [["7"]]

    dlq = unique("dlq")
    new = dict(cfg["config"])
    new.update({"errors.tolerance": "all",
                "errors.deadletterqueue.topic.name": dlq})
    assert http("PUT", "/connectors/reject/config", new)[0] == 200
    wait_rows(db, sql, [["19", "k19"]])
    wait_rows(db, "SELECT next_offset FROM samsa_sink_offsets", [["20"]])
    [m] = dlq_records(dlq, 1)
    assert m.key() == b"k07"
    assert not m.headers()  # context headers are off by default
    assert http("DELETE", "/connectors/reject")[0] == 204


def json_producer(topic):
    p = Producer({"bootstrap.servers": bootstrap()})

    def send(key, value):
        p.produce(topic,
                  key=None if key is None else json.dumps(key).encode(),
                  value=None if value is None else json.dumps(value).encode())
    return p, send


def sink_cfg(db, topic, **over):
    c = {"connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
         "topics": topic, "connection.url": jdbc_url(db),
         "auto.create": "true"}
    for k, v in over.items():
        c[k.replace("__", ".")] = v
    return c


def _f(field, typ, optional=False, **extra):
    d = {"field": field, "type": typ, "optional": optional}
    d.update(extra)
    return d


TYPED_SCHEMA = {"type": "struct", "name": "typed", "optional": False, "fields": [
    _f("id", "int32"),
    _f("i8", "int8"), _f("i16", "int16"), _f("i64", "int64"),
    _f("f32", "float"), _f("f64", "double"), _f("ok", "boolean"),
    _f("s", "string", True), _f("b", "bytes", True),
    _f("dec", "bytes", True, name="org.apache.kafka.connect.data.Decimal",
       parameters={"scale": "2"}),
    _f("day", "int32", True, name="org.apache.kafka.connect.data.Date"),
    _f("tod", "int32", True, name="org.apache.kafka.connect.data.Time"),
    _f("at", "int64", True, name="org.apache.kafka.connect.data.Timestamp"),
]}


def typed_value(i, **extra):
    v = {"id": i, "i8": -8, "i16": 1600, "i64": 2 ** 40 + i, "f32": 1.5,
         "f64": 0.1 + i, "ok": i % 2 == 0, "s": "s%d" % i,
         "b": "AAEC",  # base64 of 00 01 02
         "dec": "MDk=",  # 12345 unscaled: 123.45
         "day": 19000, "tod": 3723004, "at": 1700000000123}
    v.update(extra)
    return v


def test_json_with_schemas_struct_key_types_and_evolve():
    """JsonConverter with schemas: a struct key (pk.mode=record_key takes
    its fields), Connect's types and logical types as Postgres types, and
    auto.evolve adding an optional field."""
    db = "sinkjson"
    fresh_db(db)
    topic = unique("json")
    create_topic(admin_client(), topic, 1)
    p, send = json_producer(topic)
    kschema = {"type": "struct", "optional": False,
               "fields": [_f("id", "int32")]}
    for i in range(3):
        send({"schema": kschema, "payload": {"id": i}},
             {"schema": TYPED_SCHEMA, "payload": typed_value(i)})
    assert p.flush(30) == 0
    post({"name": "json-typed", "config": sink_cfg(
        db, topic, insert__mode="upsert", pk__mode="record_key",
        auto__evolve="true", table__name__format="typed")})
    wait_rows(db, "SELECT count(*) FROM typed", [["3"]])
    cols = q(db, "SELECT column_name, data_type, is_nullable FROM "
             "information_schema.columns WHERE table_name = 'typed' "
             "ORDER BY ordinal_position")
    assert cols == [
        ["id", "integer", "NO"], ["i8", "smallint", "NO"],
        ["i16", "smallint", "NO"], ["i64", "bigint", "NO"],
        ["f32", "real", "NO"], ["f64", "double precision", "NO"],
        ["ok", "boolean", "NO"], ["s", "text", "YES"], ["b", "bytea", "YES"],
        ["dec", "numeric", "YES"], ["day", "date", "YES"],
        ["tod", "time without time zone", "YES"],
        ["at", "timestamp without time zone", "YES"]]
    assert q(db, "SELECT id, i8, i16, i64, f32, f64, ok, s, b, dec, day, "
             "tod, at FROM typed WHERE id = 1") == [[
                 "1", "-8", "1600", str(2 ** 40 + 1), "1.5", "1.1", "f", "s1",
                 "\\x000102", "123.45", "2022-01-08", "01:02:03.004",
                 "2023-11-14 22:13:20.123"]]
    # a new optional field: ALTER TABLE ... ADD
    sch = json.loads(json.dumps(TYPED_SCHEMA))
    sch["fields"].append(_f("extra", "string", True))
    send({"schema": kschema, "payload": {"id": 1}},
         {"schema": sch, "payload": typed_value(1, extra="more", s=None)})
    assert p.flush(30) == 0
    wait_rows(db, "SELECT id, s, extra FROM typed ORDER BY id",
              [["0", "s0", ""], ["1", "", "more"], ["2", "s2", ""]])
    assert http("DELETE", "/connectors/json-typed")[0] == 204


def test_schemaless_json_modes_and_pk_modes():
    """JsonConverter without schemas (types inferred), pk.mode=record_value
    with fields.whitelist, pk.mode=kafka, insert and update modes."""
    db = "sinkmodes"
    fresh_db(db)
    topic = unique("plain")
    create_topic(admin_client(), topic, 1)
    p, send = json_producer(topic)
    send("k1", {"id": 1, "name": "one", "score": 1.5, "skip": "x"})
    send("k2", {"id": 2, "name": "two", "score": 2.5, "skip": "y"})
    send("k1", {"id": 1, "name": "uno", "score": 3.5, "skip": "z"})
    assert p.flush(30) == 0
    plain = {"value.converter": "org.apache.kafka.connect.json.JsonConverter",
             "value.converter.schemas.enable": "false",
             "key.converter": "org.apache.kafka.connect.storage.StringConverter"}
    # record_value + whitelist, upsert
    c = sink_cfg(db, topic, insert__mode="upsert", pk__mode="record_value",
                 pk__fields="id", fields__whitelist="id,name",
                 table__name__format="by_value", **{k.replace(".", "__"): v for k, v in plain.items()})
    post({"name": "by-value", "config": c})
    wait_rows(db, "SELECT id, name FROM by_value ORDER BY id",
              [["1", "uno"], ["2", "two"]])
    assert q(db, "SELECT column_name, data_type FROM information_schema.columns "
             "WHERE table_name = 'by_value' ORDER BY ordinal_position") == [
                 ["id", "bigint"], ["name", "text"]]
    # kafka coordinates as the key, plain inserts
    c = sink_cfg(db, topic, insert__mode="insert", pk__mode="kafka",
                 table__name__format="by_kafka", **{k.replace(".", "__"): v for k, v in plain.items()})
    post({"name": "by-kafka", "config": c})
    wait_rows(db, "SELECT __connect_topic = '%s', __connect_partition, "
              "__connect_offset, name FROM by_kafka ORDER BY 3" % topic,
              [["t", "0", "0", "one"], ["t", "0", "1", "two"],
               ["t", "0", "2", "uno"]])
    # update: only rows that exist change
    from test_cdc import psql
    psql(db, "CREATE TABLE upd (id bigint PRIMARY KEY, name text, score "
         "double precision, skip text)", "INSERT INTO upd VALUES (2, 'old', 0, '')")
    c = sink_cfg(db, topic, insert__mode="update", pk__mode="record_value",
                 pk__fields="id", table__name__format="upd", **{k.replace(".", "__"): v for k, v in plain.items()})
    post({"name": "upd", "config": c})
    wait_rows(db, "SELECT id, name, score, skip FROM upd ORDER BY id",
              [["2", "two", "2.5", "y"]])
    for n in ["by-value", "by-kafka", "upd"]:
        assert wait_task(n, "RUNNING")
        assert http("DELETE", "/connectors/" + n)[0] == 204


def test_debezium_sink_applies_samsa_cdc_envelopes():
    """Debezium's JDBC sink class on the change events of samsa's own
    Debezium-compatible source (envelopes, JSON with schemas): snapshot
    reads, inserts, updates, deletes and tombstones, over topics.regex, with
    Debezium's table naming (dots to underscores) and types."""
    from test_cdc import psql
    src, dst = "dbzsrc", "dbzdst"
    fresh_db(src)
    fresh_db(dst)
    psql(src, "CREATE TABLE items (id int PRIMARY KEY, name text, "
         "price numeric(10,2), made timestamp, day date)",
         "CREATE TABLE tags (id int PRIMARY KEY, tag text)",
         "INSERT INTO items VALUES (1, 'one', 1.25, '2024-01-02 03:04:05.5', "
         "'2024-01-02'), (2, 'two', 2.50, NULL, NULL), (3, 'three', 3, NULL, NULL)",
         "INSERT INTO tags VALUES (1, 'red')")
    host, port = pg_params()
    prefix = unique("dbz").replace("-", "_")
    code, body = http("DELETE", "/connectors/dbz-source")
    code, body = http("POST", "/connectors", {"name": "dbz-source", "config": {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": host, "database.port": port,
        "database.user": "postgres", "database.password": "postgres",
        "database.dbname": src, "topic.prefix": prefix,
        "slot.name": prefix, "publication.name": prefix,
        "publication.autocreate.mode": "filtered",
        "table.include.list": "public.items,public.tags"}})
    assert code == 201, body
    post({"name": "dbz-sink", "config": {
        "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
        "topics.regex": prefix + r"\.public\..*",
        "connection.url": "jdbc:postgresql://%s:%s/%s" % (host, port, dst),
        "connection.username": "postgres", "connection.password": "postgres",
        "insert.mode": "upsert", "primary.key.mode": "record_key",
        "delete.enabled": "true", "schema.evolution": "basic"}})
    items = prefix + "_public_items"
    sql = 'SELECT id, name, price, made, day FROM "%s" ORDER BY id' % items
    wait_rows(dst, sql, [["1", "one", "1.25", "2024-01-02 03:04:05.5",
                          "2024-01-02"], ["2", "two", "2.50", "", ""],
                         ["3", "three", "3.00", "", ""]])
    wait_rows(dst, 'SELECT id, tag FROM "%s_public_tags"' % prefix,
              [["1", "red"]])
    psql(src, "UPDATE items SET name = 'TWO', price = 22 WHERE id = 2",
         "DELETE FROM items WHERE id = 3",
         "INSERT INTO items VALUES (4, 'four', 4.4, NULL, '1969-12-31')")
    wait_rows(dst, sql, [["1", "one", "1.25", "2024-01-02 03:04:05.5",
                          "2024-01-02"], ["2", "TWO", "22.00", "", ""],
                         ["4", "four", "4.40", "", "1969-12-31"]])
    cols = q(dst, "SELECT column_name, data_type FROM information_schema.columns "
             "WHERE table_name = '%s' ORDER BY ordinal_position" % items)
    assert cols == [["id", "integer"], ["name", "text"], ["price", "numeric"],
                    ["made", "timestamp without time zone"], ["day", "date"]]
    code, tl = http("GET", "/connectors/dbz-sink/topics")
    assert sorted(tl["dbz-sink"]["topics"]) == [prefix + ".public.items",
                                                prefix + ".public.tags"]
    # pause: nothing applied; resume: applied
    assert http("PUT", "/connectors/dbz-sink/pause")[0] == 202
    wait_task("dbz-sink", "PAUSED")
    psql(src, "UPDATE tags SET tag = 'blue' WHERE id = 1")
    time.sleep(2)
    assert q(dst, 'SELECT tag FROM "%s_public_tags"' % prefix) == [["red"]]
    assert http("PUT", "/connectors/dbz-sink/resume")[0] == 202
    wait_rows(dst, 'SELECT tag FROM "%s_public_tags"' % prefix, [["blue"]])
    http("DELETE", "/connectors/dbz-sink")
    http("DELETE", "/connectors/dbz-source")


def test_target_database_away_and_back():
    """The target refuses connections for a while: the task stays RUNNING,
    says why in its trace, retries with back-off, and applies everything
    once the database is back."""
    from test_cdc import psql
    db = "sinkaway"
    fresh_db(db)
    topic = unique("away")
    create_topic(admin_client(), topic, 1)
    p, send = json_producer(topic)
    send(None, {"id": 1, "v": "a"})
    assert p.flush(30) == 0
    post({"name": "away", "config": sink_cfg(
        db, topic, insert__mode="upsert", pk__mode="record_value",
        pk__fields="id", value__converter__schemas__enable="false",
        table__name__format="t")})
    wait_rows(db, "SELECT id, v FROM t", [["1", "a"]])
    try:
        psql("postgres", f"ALTER DATABASE {db} ALLOW_CONNECTIONS false",
             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
             f"WHERE datname = '{db}'")
        for i in range(2, 6):
            send(None, {"id": i, "v": "x%d" % i})
        assert p.flush(30) == 0
        # The trace carries libpq's reason, not just "not connected".
        deadline = time.time() + 30
        st = None
        while time.time() < deadline:
            st = status("away")
            if "not currently accepting connections" in \
                    (st["tasks"][0].get("trace") or ""):
                break
            time.sleep(0.2)
        assert st["tasks"][0]["state"] == "RUNNING", st
        assert "retrying" in st["tasks"][0].get("trace", ""), st
        assert "not currently accepting connections" in \
            st["tasks"][0]["trace"], st
    finally:
        psql("postgres", f"ALTER DATABASE {db} ALLOW_CONNECTIONS true")
    wait_rows(db, "SELECT count(*), max(v) FROM t", [["5", "x5"]], timeout=90)
    wait_rows(db, "SELECT next_offset FROM samsa_sink_offsets", [["5"]])
    deadline = time.time() + 10
    while status("away")["tasks"][0].get("trace") and time.time() < deadline:
        time.sleep(0.2)
    assert status("away")["tasks"][0].get("trace") is None
    assert http("DELETE", "/connectors/away")[0] == 204


def test_target_never_reachable_says_why():
    """A target nothing listens on: the task is RUNNING and its trace has
    libpq's message (connection refused), not only "not connected"."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    topic = unique("nowhere")
    cfg = sink_cfg("nowhere", topic)
    cfg["connection.url"] = (f"jdbc:postgresql://127.0.0.1:{port}/nowhere"
                             "?user=postgres&password=postgres")
    post({"name": "nowhere", "config": cfg})
    deadline = time.time() + 30
    st = None
    while time.time() < deadline:
        st = status("nowhere")
        if "refused" in (st["tasks"][0].get("trace") or ""):
            break
        time.sleep(0.2)
    assert st["tasks"][0]["state"] == "RUNNING", st
    trace = st["tasks"][0].get("trace") or ""
    assert "refused" in trace and str(port) in trace, st
    assert http("DELETE", "/connectors/nowhere")[0] == 204


def test_only_committed_transactions_are_applied():
    """The applier reads committed data only: an open transaction's
    records wait for its commit (the last stable offset), an aborted one's
    never arrive."""
    db = "sinktxn"
    fresh_db(db)
    from test_cdc import psql
    psql(db, "CREATE TABLE t (id bigint PRIMARY KEY, v text)")
    topic = unique("txn")
    create_topic(admin_client(), topic, 1)
    post({"name": "txn", "config": sink_cfg(
        db, topic, insert__mode="upsert", pk__mode="record_value",
        pk__fields="id", value__converter__schemas__enable="false",
        table__name__format="t")})
    p = Producer({"bootstrap.servers": bootstrap(),
                  "transactional.id": unique("txn")})
    p.init_transactions(30)

    def send(i, v):
        p.produce(topic, value=json.dumps({"id": i, "v": v}).encode())
    p.begin_transaction()
    send(1, "aborted")
    send(2, "aborted")
    p.flush(30)
    p.abort_transaction(30)
    p.begin_transaction()
    send(1, "committed")
    p.flush(30)
    time.sleep(1.5)  # open: nothing of it may be applied yet
    assert q(db, "SELECT count(*) FROM t") == [["0"]]
    p.commit_transaction(30)
    plain = Producer({"bootstrap.servers": bootstrap()})
    plain.produce(topic, value=json.dumps({"id": 3, "v": "plain"}).encode())
    plain.flush(30)
    wait_rows(db, "SELECT id, v FROM t ORDER BY id",
              [["1", "committed"], ["3", "plain"]])
    # everything, markers included, is covered by the stored offset
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": unique("w")})
    end = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    c.close()
    wait_rows(db, "SELECT next_offset FROM samsa_sink_offsets", [[str(end)]])
    assert http("DELETE", "/connectors/txn")[0] == 204


def test_partitions_each_with_its_offset():
    """A topic of three partitions: every record applied once, one stored
    offset per partition, each at its partition's end."""
    db = "sinkparts"
    fresh_db(db)
    topic = unique("parts")
    create_topic(admin_client(), topic, 3)
    p, send = json_producer(topic)
    for i in range(300):
        send("k%d" % i, {"id": i})
    assert p.flush(30) == 0
    post({"name": "parts", "config": sink_cfg(
        db, topic, insert__mode="insert", pk__mode="kafka",
        value__converter__schemas__enable="false",
        key__converter="org.apache.kafka.connect.storage.StringConverter",
        table__name__format="t", batch__size="7")})
    wait_rows(db, "SELECT count(*), count(DISTINCT id) FROM t",
              [["300", "300"]])
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": unique("w")})
    ends = [[str(k), str(c.get_watermark_offsets(
        TopicPartition(topic, k), timeout=10)[1])] for k in range(3)]
    c.close()
    assert sum(int(e[1]) for e in ends) == 300
    wait_rows(db, "SELECT partition, next_offset FROM samsa_sink_offsets "
              "ORDER BY 1", ends)
    assert q(db, "SELECT count(*) FROM t GROUP BY __connect_partition "
             "ORDER BY __connect_partition") == [[e[1]] for e in ends]
    assert http("DELETE", "/connectors/parts")[0] == 204


def test_integer_key_converter_as_ksqldb_writes_keys():
    """ksqlDB 0.10 and later write an INT key as 4 big-endian bytes:
    IntegerConverter reads it, and the key column is an integer."""
    db = "sinkintkey"
    fresh_db(db)
    topic = unique("intkey")
    create_topic(admin_client(), topic, 1)
    sr = SchemaRegistryClient({"url": REGISTRY})
    ser = AvroSerializer(sr, KSQL_SCHEMA)
    ctx = SerializationContext(topic, MessageField.VALUE)
    p = Producer({"bootstrap.servers": bootstrap()})
    for k, v in [(0, 0.5), (1, 0.7), (0, 0.6519)]:
        p.produce(topic, key=k.to_bytes(4, "big", signed=True),
                  value=ser({"RESEARCH": k, "AVE_CHANCE": v}, ctx))
    assert p.flush(30) == 0
    cfg = seed_sink(db, topic, key__converter=(
        "org.apache.kafka.connect.converters.IntegerConverter"))
    cfg["name"] = "intkey"
    post(cfg)
    wait_rows(db, 'SELECT "RESEARCH", "AVE_CHANCE" FROM "%s" ORDER BY 1'
              % topic, [["0", "0.6519"], ["1", "0.7"]])
    assert q(db, "SELECT data_type FROM information_schema.columns WHERE "
             "column_name = 'RESEARCH'") == [["integer"]]
    assert http("DELETE", "/connectors/intkey")[0] == 204


def test_tombstones_with_keys_of_different_shapes():
    """Schemaless JSON keys (pk.mode=record_key) need not all name the same
    fields: tombstones of a two-field and a one-field key in one batch each
    delete by their own fields (the second was read past its columns, and
    samsa died, again at every restart)."""
    db = "sinkshapes"
    fresh_db(db)
    from test_cdc import psql
    psql(db, "CREATE TABLE shapes (a bigint, b bigint, v text, PRIMARY KEY (a, b))")
    topic = unique("shapes")
    create_topic(admin_client(), topic, 1)
    p, send = json_producer(topic)
    for i, v in ((1, "x"), (2, "y"), (3, "z")):
        send({"a": i, "b": i}, {"v": v})
    assert p.flush(30) == 0
    plain = {"value.converter": "org.apache.kafka.connect.json.JsonConverter",
             "value.converter.schemas.enable": "false",
             "key.converter": "org.apache.kafka.connect.json.JsonConverter",
             "key.converter.schemas.enable": "false"}
    c = sink_cfg(db, topic, insert__mode="upsert", pk__mode="record_key",
                 delete__enabled="true", table__name__format="shapes",
                 auto__create="false",
                 **{k.replace(".", "__"): v for k, v in plain.items()})
    post({"name": "shapes", "config": c})
    wait_rows(db, "SELECT a, b, v FROM shapes ORDER BY a",
              [["1", "1", "x"], ["2", "2", "y"], ["3", "3", "z"]])
    # Paused, so that both tombstones come in one batch.
    assert http("PUT", "/connectors/shapes/pause")[0] == 202
    send({"a": 1, "b": 1}, None)
    send({"a": 2}, None)
    assert p.flush(30) == 0
    assert http("PUT", "/connectors/shapes/resume")[0] == 202
    wait_rows(db, "SELECT a, b, v FROM shapes ORDER BY a", [["3", "3", "z"]])
    assert wait_task("shapes", "RUNNING")
    # Connect's per-task status and KIP-745's restart answer.
    code, st = http("GET", "/connectors/shapes/tasks/0/status")
    assert code == 200 and st["id"] == 0 and st["state"] == "RUNNING", st
    assert http("GET", "/connectors/shapes/tasks/1/status")[0] == 404
    code, st = http("POST", "/connectors/shapes/restart?includeTasks=true&onlyFailed=false")
    assert code == 202 and st["name"] == "shapes" and len(st["tasks"]) == 1, st
    assert http("POST", "/connectors/shapes/restart")[0] == 204
    assert http("POST", "/connectors/shapes/restart?includeTasks=false&onlyFailed=false")[0] == 204
    # onlyFailed leaves a running task alone (its progress goes on).
    code, st = http("POST", "/connectors/shapes/restart?includeTasks=true&onlyFailed=true")
    assert code == 202 and st["tasks"][0]["state"] == "RUNNING", st
    # A name with %00 is no connector's (it was cut to "shapes").
    code, _ = http("GET", "/connectors/shapes%00b/status")
    assert code == 404
    assert http("DELETE", "/connectors/shapes")[0] == 204


def json_topic(db, name, *sql):
    """A fresh database db (sql run in it), a topic of one partition named
    after name, and a JSON producer of it: (topic, producer, send)."""
    from test_cdc import psql
    fresh_db(db)
    if sql:
        psql(db, *sql)
    topic = unique(name)
    create_topic(admin_client(), topic, 1)
    p, send = json_producer(topic)
    return topic, p, send


TIME_SCHEMA = {"type": "struct", "name": "times", "optional": False,
               "fields": [
                   _f("id", "int32"),
                   _f("ts", "int64", True,
                      name="org.apache.kafka.connect.data.Timestamp"),
                   _f("lt", "int64", True,
                      name="org.apache.kafka.connect.data.Timestamp"),
                   _f("t", "int32", True,
                      name="org.apache.kafka.connect.data.Time")]}


def test_times_are_utc_whatever_the_database_zone():
    """A target database whose TimeZone is America/New_York: Connect's
    timestamps and times are UTC instants, so a timestamptz or timetz
    column holds that instant (they were read in the database's zone, five
    hours off) and a timestamp column the UTC time, as Confluent's sink
    with db.timezone's default UTC; with db.timezone=America/New_York a
    timestamp column gets New York's time of the instant."""
    db = "sinkzone"
    topic, p, send = json_topic(
        db, "zone", f"ALTER DATABASE {db} SET timezone = 'America/New_York'",
        *(f"CREATE TABLE {t} (id int PRIMARY KEY, ts timestamptz, "
          "lt timestamp, t timetz)" for t in ("utc", "ny")))
    # 2020-01-01T00:00:00Z and 12:00 UTC
    send(None, {"schema": TIME_SCHEMA, "payload": {
        "id": 1, "ts": 1577836800000, "lt": 1577836800000, "t": 43200000}})
    assert p.flush(30) == 0
    for t, zone in (("utc", None), ("ny", "America/New_York")):
        c = sink_cfg(db, topic, insert__mode="upsert",
                     pk__mode="record_value", pk__fields="id",
                     table__name__format=t)
        if zone:
            c["db.timezone"] = zone
        post({"name": "zone-" + t, "config": c})
    sql = ("SET TimeZone = 'UTC'; SELECT id, ts, lt, t FROM %s")
    wait_rows(db, sql % "utc", [["1", "2020-01-01 00:00:00+00",
                                 "2020-01-01 00:00:00", "12:00:00+00"]])
    wait_rows(db, sql % "ny", [["1", "2020-01-01 00:00:00+00",
                                "2019-12-31 19:00:00", "12:00:00+00"]])
    for t in ("utc", "ny"):
        assert http("DELETE", "/connectors/zone-" + t)[0] == 204


def test_debezium_timestamps_are_local_whatever_the_zone():
    """Debezium's Timestamp, MicroTimestamp and NanoTimestamp are local
    date-times: with database.time_zone=America/New_York (and the database
    in that zone) a timestamp column gets them as they are, as Debezium's
    sink writes them (atZone(dbZone).toLocalDateTime()); they were taken
    as UTC instants and shifted five hours back."""
    db = "sinkdbzlocal"
    topic, p, send = json_topic(
        db, "dbzlocal",
        f"ALTER DATABASE {db} SET timezone = 'America/New_York'",
        "CREATE TABLE lt (id int PRIMARY KEY, ms timestamp, "
        "us timestamp, ns timestamp)")
    sch = {"type": "struct", "optional": False, "fields": [
        _f("id", "int32"),
        _f("ms", "int64", True, name="io.debezium.time.Timestamp"),
        _f("us", "int64", True, name="io.debezium.time.MicroTimestamp"),
        _f("ns", "int64", True, name="io.debezium.time.NanoTimestamp")]}
    # 2020-01-01T00:00:00 (and .5 s)
    send(None, {"schema": sch, "payload": {
        "id": 1, "ms": 1577836800000, "us": 1577836800500000,
        "ns": 1577836800000000000}})
    assert p.flush(30) == 0
    post({"name": "dbzlocal", "config": {
        "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
        "topics": topic, "connection.url": jdbc_url(db),
        "insert.mode": "upsert", "primary.key.mode": "record_value",
        "primary.key.fields": "id", "collection.name.format": "lt",
        "database.time_zone": "America/New_York"}})
    wait_rows(db, "SELECT id, ms, us, ns FROM lt", [
        ["1", "2020-01-01 00:00:00", "2020-01-01 00:00:00.5",
         "2020-01-01 00:00:00"]])
    assert http("DELETE", "/connectors/dbzlocal")[0] == 204


def post_failing(name, cfg, *words):
    """Posts cfg as connector name, whose task must fail with each of words
    in its trace."""
    post({"name": name, "config": cfg})
    trace = wait_task(name, "FAILED")["tasks"][0]["trace"]
    for w in words:
        assert w in trace, trace


def test_value_too_long_for_its_column_is_refused():
    """varchar(5), char(3) and bit(3) columns: a value too long for one is
    refused as Postgres refuses it to Confluent's sink (the task FAILED at
    that record; with errors.tolerance=all, the dead letter queue), not cut
    to fit by the statement's cast; a short one is stored (char padded)."""
    db = "sinklong"
    topic, p, send = json_topic(db, "long", "CREATE TABLE vc (id int "
                                "PRIMARY KEY, s varchar(5), c char(3), "
                                "b bit(3))")
    sch = {"type": "struct", "optional": False, "fields": [
        _f("id", "int32"), _f("s", "string", True), _f("c", "string", True),
        _f("b", "string", True)]}
    for v in ({"id": 1, "s": "ok", "c": "ab", "b": "101"},
              {"id": 2, "s": "abcdefghij", "c": "x", "b": "1"},
              {"id": 3, "s": "x", "c": "wxyz", "b": "1"},
              {"id": 4, "s": "x", "c": "x", "b": "1111"},
              {"id": 5, "s": "five", "c": "x", "b": "111"}):
        send(None, {"schema": sch, "payload": v})
    assert p.flush(30) == 0
    cfg = sink_cfg(db, topic, insert__mode="upsert", pk__mode="record_value",
                   pk__fields="id", table__name__format="vc")
    post_failing("long", cfg, "value too long", "offset 1")
    assert q(db, "SELECT id, s, c, octet_length(c), b FROM vc") == [
        ["1", "ok", "ab ", "3", "101"]]
    dlq = unique("dlq")
    cfg.update({"errors.tolerance": "all",
                "errors.deadletterqueue.topic.name": dlq})
    assert http("PUT", "/connectors/long/config", cfg)[0] == 200
    wait_rows(db, "SELECT id, s FROM vc ORDER BY id",
              [["1", "ok"], ["5", "five"]])
    got = sorted(json.loads(m.value())["payload"]["id"]
                 for m in dlq_records(dlq, 3))
    assert got == [2, 3, 4]
    assert http("DELETE", "/connectors/long")[0] == 204


def test_null_field_takes_its_default():
    """JsonConverter gives a field's default for a null (Connect's
    replace.null.with.default, true): a null for a field with a default is
    stored as the default (it was stored as NULL), and the table made for
    it has the default as the column's DEFAULT, as Confluent's."""
    db = "sinkdefault"
    topic, p, send = json_topic(db, "default")
    sch = {"type": "struct", "optional": False, "fields": [
        _f("id", "int32"), _f("dflt", "int32", default=5),
        _f("s", "string", True, default="it's"), _f("n", "int32", True)]}
    send(None, {"schema": sch, "payload": {"id": 1, "dflt": None,
                                           "s": None, "n": None}})
    send(None, {"schema": sch, "payload": {"id": 2, "dflt": 7, "s": "x",
                                           "n": 3}})
    assert p.flush(30) == 0
    post({"name": "default", "config": sink_cfg(
        db, topic, insert__mode="upsert", pk__mode="record_value",
        pk__fields="id", table__name__format="dflt")})
    wait_rows(db, "SELECT id, dflt, s, n FROM dflt ORDER BY id",
              [["1", "5", "it's", ""], ["2", "7", "x", "3"]])
    assert q(db, "SELECT column_name, column_default, is_nullable FROM "
             "information_schema.columns WHERE table_name = 'dflt' "
             "ORDER BY ordinal_position") == [
                 ["id", "", "NO"], ["dflt", "5", "YES"],
                 ["s", "'it''s'::text", "YES"], ["n", "", "YES"]]
    assert http("DELETE", "/connectors/default")[0] == 204


def test_dead_letters_each_record_once():
    """errors.tolerance=all with a dead letter queue: records that fail
    conversion go to it as the batch is read; when the batch's statement
    then fails too (a CHECK constraint) and is replayed record by record,
    they are not sent again: each bad record is in the queue once (offsets
    5 and 6 were there twice)."""
    from test_cdc import psql
    db = "sinkdlqonce"
    fresh_db(db)
    psql(db, "CREATE TABLE chk (id int PRIMARY KEY, v int CHECK (v < 100))")
    topic = unique("dlqonce")
    create_topic(admin_client(), topic, 1)
    sch = {"type": "struct", "optional": False,
           "fields": [_f("id", "int32"), _f("v", "int32")]}
    p = Producer({"bootstrap.servers": bootstrap()})
    for i in range(1, 6):
        p.produce(topic, value=json.dumps({"schema": sch, "payload": {
            "id": i, "v": 500 if i == 3 else i}}).encode())
    p.produce(topic, value=b"not json")
    p.produce(topic, value=json.dumps({"schema": sch, "payload": {
        "id": 7, "v": "x"}}).encode())
    p.produce(topic, value=json.dumps({"schema": sch, "payload": {
        "id": 8, "v": 8}}).encode())
    assert p.flush(30) == 0
    dlq = unique("dlq")
    post({"name": "dlqonce", "config": sink_cfg(
        db, topic, insert__mode="upsert", pk__mode="record_value",
        pk__fields="id", table__name__format="chk",
        errors__tolerance="all",
        errors__deadletterqueue__topic__name=dlq,
        errors__deadletterqueue__context__headers__enable="true")})
    wait_rows(db, "SELECT id FROM chk ORDER BY id",
              [["1"], ["2"], ["4"], ["5"], ["8"]])
    wait_rows(db, "SELECT next_offset FROM samsa_sink_offsets", [["8"]])
    got = sorted(int(dict(m.headers())["__connect.errors.offset"])
                 for m in dlq_records(dlq, 4, timeout=5))
    assert got == [2, 5, 6]
    st = status("dlqonce")
    assert st["tasks"][0]["progress"]["dead_letters"] == 3, st
    assert http("DELETE", "/connectors/dlqonce")[0] == 204


def test_key_written_with_other_columns_in_one_batch():
    """Upserts of one key in one batch whose schemas differ: the later row
    sets only its own columns, the earlier row's others stay, as
    Confluent's sink flushing when the schema changes ({id:1,a:1,b:2} then
    {id:1,a:5} is (1,5,2); only the last row was written, (1,5,NULL))."""
    db = "sinkshapechg"
    topic, p, send = json_topic(db, "shapechg")
    ab = {"type": "struct", "optional": False, "fields": [
        _f("id", "int32"), _f("a", "int32", True), _f("b", "int32", True)]}
    a = {"type": "struct", "optional": False, "fields": [
        _f("id", "int32"), _f("a", "int32", True)]}
    for sch, v in ((ab, {"id": 1, "a": 1, "b": 2}), (a, {"id": 1, "a": 5}),
                   (ab, {"id": 2, "a": 1, "b": 1}), (a, {"id": 2, "a": 2}),
                   (ab, {"id": 2, "a": 3, "b": 3}), (ab, {"id": 3, "a": 1,
                                                          "b": 1}),
                   (a, {"id": 3, "a": 2}), (a, {"id": 3, "a": 4})):
        send(None, {"schema": sch, "payload": v})
    assert p.flush(30) == 0
    post({"name": "shapechg", "config": sink_cfg(
        db, topic, insert__mode="upsert", pk__mode="record_value",
        pk__fields="id", table__name__format="t")})
    wait_rows(db, "SELECT next_offset FROM samsa_sink_offsets", [["8"]])
    assert q(db, "SELECT id, a, b FROM t ORDER BY id") == [
        ["1", "5", "2"], ["2", "3", "3"], ["3", "4", "1"]]
    assert http("DELETE", "/connectors/shapechg")[0] == 204


def test_insert_mode_key_twice_in_one_batch_fails():
    """insert.mode=insert: a key inserted twice in one batch is the
    duplicate key error Confluent's INSERT meets (the task FAILED at the
    second record; with errors.tolerance=all it goes to the dead letter
    queue), not the first record dropped in silence."""
    db = "sinkinsdup"
    topic, p, send = json_topic(db, "insdup")
    sch = {"type": "struct", "optional": False,
           "fields": [_f("id", "int32"), _f("v", "int32")]}
    for i, v in ((1, 1), (1, 2), (2, 3)):
        send(None, {"schema": sch, "payload": {"id": i, "v": v}})
    assert p.flush(30) == 0
    cfg = sink_cfg(db, topic, insert__mode="insert", pk__mode="record_value",
                   pk__fields="id", table__name__format="t")
    post_failing("insdup", cfg, "duplicate key", "offset 1")
    assert q(db, "SELECT id, v FROM t") == [["1", "1"]]
    dlq = unique("dlq")
    cfg.update({"errors.tolerance": "all",
                "errors.deadletterqueue.topic.name": dlq})
    assert http("PUT", "/connectors/insdup/config", cfg)[0] == 200
    wait_rows(db, "SELECT id, v FROM t ORDER BY id", [["1", "1"], ["2", "3"]])
    [m] = dlq_records(dlq, 1)
    assert json.loads(m.value())["payload"] == {"id": 1, "v": 2}
    assert http("DELETE", "/connectors/insdup")[0] == 204


def test_current_schema_of_the_url():
    """connection.url's currentSchema is the connection's search_path, as
    pgJDBC sends it: the table made for the topic (and the sink's offsets)
    go to that schema, not public (the parameter was ignored)."""
    db = "sinkschema"
    topic, p, send = json_topic(db, "schema", "CREATE SCHEMA staging")
    send(None, {"schema": {"type": "struct", "optional": False,
                           "fields": [_f("id", "int32")]},
                "payload": {"id": 1}})
    assert p.flush(30) == 0
    cfg = sink_cfg(db, topic, table__name__format="cs")
    cfg["connection.url"] += "&currentSchema=staging&loggerLevel=OFF"
    post({"name": "schema", "config": cfg})
    wait_rows(db, "SELECT id FROM staging.cs", [["1"]])
    assert q(db, "SELECT table_schema, table_name FROM "
             "information_schema.tables WHERE table_name IN "
             "('cs', 'samsa_sink_offsets') ORDER BY 2") == [
                 ["staging", "cs"], ["staging", "samsa_sink_offsets"]]
    assert http("DELETE", "/connectors/schema")[0] == 204


def test_string_key_typed_by_a_write_after_a_tombstone():
    """A string key (pk.mode=record_key) takes the type of the value's field
    of its name, also when the batch that makes the table starts with a
    tombstone, whose key has no value to take it from: the column is an
    integer (it was text when the tombstone came first)."""
    db = "sinktombfirst"
    topic, p, send = json_topic(db, "tombfirst")
    sch = {"type": "struct", "optional": False, "fields": [
        _f("RESEARCH", "int32"), _f("v", "double", True)]}
    for k, v in (("0", None), ("1", {"RESEARCH": 1, "v": 1.5}),
                 ("0", {"RESEARCH": 0, "v": 2.5})):
        p.produce(topic, key=k.encode(), value=None if v is None else
                  json.dumps({"schema": sch, "payload": v}).encode())
    assert p.flush(30) == 0
    post({"name": "tombfirst", "config": sink_cfg(
        db, topic, insert__mode="upsert", pk__mode="record_key",
        pk__fields="RESEARCH", delete__enabled="true",
        key__converter="org.apache.kafka.connect.storage.StringConverter",
        table__name__format="t")})
    wait_rows(db, 'SELECT "RESEARCH", v FROM t ORDER BY 1',
              [["0", "2.5"], ["1", "1.5"]])
    assert q(db, "SELECT column_name, data_type FROM information_schema."
             "columns WHERE table_name = 't' ORDER BY ordinal_position") == [
                 ["RESEARCH", "integer"], ["v", "double precision"]]
    assert http("DELETE", "/connectors/tombfirst")[0] == 204


def test_debezium_collection_name_from_source_block():
    """Debezium's collection.name.format with ${source.schema} and
    ${source.table}: each change event goes to the table its source block
    names (one topic, two tables; a dot makes schema.table), tombstones are
    left alone as Debezium leaves them (they have no source block)."""
    db = "sinkbysource"
    topic, p, send = json_topic(db, "bysource", "CREATE SCHEMA inv")
    val = {"type": "struct", "optional": True, "name": "V", "fields": [
        _f("id", "int32"), _f("name", "string", True)]}
    envs = {"type": "struct", "name": "E", "fields": [
        dict(val, field="before"), dict(val, field="after"),
        {"field": "source", "type": "struct", "optional": False,
         "fields": [_f("db", "string"), _f("schema", "string"),
                    _f("table", "string")]},
        _f("op", "string")]}
    keys = {"type": "struct", "optional": False,
            "fields": [_f("id", "int32")]}

    def ev(table, op, i, name):
        after = None if op == "d" else {"id": i, "name": name}
        return ({"schema": keys, "payload": {"id": i}},
                {"schema": envs, "payload": {
                    "before": None, "after": after, "op": op,
                    "source": {"db": "src", "schema": "inv",
                               "table": table}}})
    for e in (ev("items", "c", 1, "a"), ev("tags", "c", 1, "red"),
              ev("items", "c", 2, "b"), ev("items", "u", 1, "a2"),
              ev("tags", "c", 2, "blue"), ev("tags", "d", 1, None),
              ({"schema": keys, "payload": {"id": 2}}, None)):
        send(*e)
    assert p.flush(30) == 0
    post({"name": "bysource", "config": {
        "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
        "topics": topic, "connection.url": jdbc_url(db),
        "insert.mode": "upsert", "primary.key.mode": "record_key",
        "delete.enabled": "true", "schema.evolution": "basic",
        "collection.name.format": "${source.schema}.${source.table}"}})
    wait_rows(db, "SELECT next_offset FROM samsa_sink_offsets", [["7"]])
    assert q(db, "SELECT id, name FROM inv.items ORDER BY id") == [
        ["1", "a2"], ["2", "b"]]
    assert q(db, "SELECT id, name FROM inv.tags ORDER BY id") == [
        ["2", "blue"]]
    assert wait_task("bysource", "RUNNING")
    assert http("DELETE", "/connectors/bysource")[0] == 204


def test_debezium_source_tables_interleaved_share_a_unit():
    """Events of two tables interleaved (a, b, a, b ...) on one topic routed
    by ${source.table} go in one batch, one transaction with a statement
    per table: each row records the transaction that wrote it, and 40
    events already in the topic take one or two (a batch per event
    before); the same key in both tables is two rows, not one
    superseding the other."""
    db = "sinkinterleave"
    topic, p, send = json_topic(
        db, "interleave",
        "CREATE TABLE a (id int PRIMARY KEY, name text, "
        "x bigint DEFAULT txid_current())",
        "CREATE TABLE b (id int PRIMARY KEY, name text, "
        "x bigint DEFAULT txid_current())")
    val = {"type": "struct", "optional": True, "name": "V", "fields": [
        _f("id", "int32"), _f("name", "string", True)]}
    envs = {"type": "struct", "name": "E", "fields": [
        dict(val, field="before"), dict(val, field="after"),
        {"field": "source", "type": "struct", "optional": False,
         "fields": [_f("table", "string")]},
        _f("op", "string")]}
    keys = {"type": "struct", "optional": False,
            "fields": [_f("id", "int32")]}
    for i in range(40):
        table = "ab"[i % 2]
        send({"schema": keys, "payload": {"id": i // 2}},
             {"schema": envs, "payload": {
                 "before": None, "after": {"id": i // 2, "name": str(i)},
                 "op": "c", "source": {"table": table}}})
    assert p.flush(30) == 0
    post({"name": "interleave", "config": {
        "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
        "topics": topic, "connection.url": jdbc_url(db),
        "insert.mode": "upsert", "primary.key.mode": "record_key",
        "collection.name.format": "${source.table}"}})
    wait_rows(db, "SELECT next_offset FROM samsa_sink_offsets", [["40"]])
    assert q(db, "SELECT count(*), min(name), max(name) FROM a") == [
        ["20", "0", "8"]]
    assert q(db, "SELECT count(*), min(name), max(name) FROM b") == [
        ["20", "1", "9"]]
    units = int(q(db, "SELECT count(DISTINCT x) FROM "
                  "(SELECT x FROM a UNION ALL SELECT x FROM b) u")[0][0])
    assert units <= 2, units
    assert wait_task("interleave", "RUNNING")
    assert http("DELETE", "/connectors/interleave")[0] == 204
