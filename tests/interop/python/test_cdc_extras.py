"""Debezium Postgres connector options beyond the seed's: message.key.columns,
snapshot.mode=when_needed, heartbeats (heartbeat.interval.ms, topic
__debezium-heartbeat.<prefix>), Connect's topic.creation.* settings, its
RegexRouter transform, column.include.list / column.exclude.list,
skipped.operations, truncate.handling.mode, heartbeat.action.query and ExtractNewRecordState's
add.headers and delete.tombstone.handling.mode."""
import base64
import json
import subprocess
import time

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import ConfigResource, ResourceType

import samsa_client
from test_cdc import (fresh_db, http, pg_params, post, post_until_failed, psql,
                      seed_config)
from test_cdc_avro import AVRO, REGISTRY, consume, latest, remove, reset, wait_state


def json_cfg(db, name, prefix, slot, **over):
    cfg = seed_config(db, transforms=None, transforms__unwrap__type=None, **{
        "database.server.name": prefix, "slot.name": slot,
        "publication.name": slot + "_pub",
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "false",
        "value.converter.schemas.enable": "false", **over})
    cfg["name"] = name
    return cfg


def json_cfg_with(db, name, prefix, slot, **settings):
    """json_cfg with settings (dotted names; None removes one) put after,
    transforms included"""
    cfg = json_cfg(db, name, prefix, slot)
    cfg["config"].update(settings)
    cfg["config"] = {k: v for k, v in cfg["config"].items() if v is not None}
    return cfg


def test_message_key_columns():
    """message.key.columns replaces the primary key of the tables it names
    (in table column order); other tables keep theirs."""
    db = "cdc_mkc"
    http("DELETE", "/connectors/mkc-source")
    fresh_db(db)
    psql(db, "CREATE TABLE t (id int PRIMARY KEY, code text NOT NULL, "
             "region text NOT NULL, v int)",
         "CREATE TABLE u (id int PRIMARY KEY, w int)",
         "INSERT INTO t VALUES (1, 'a', 'eu', 10)", "INSERT INTO u VALUES (1, 5)")
    bad = json_cfg(db, "mkc-source", "mkc", "mkc_slot",
                   **{"message.key.columns": "public.t"})
    code, body = post(bad)
    assert code == 400 and "message.key.columns" in body["message"], body
    cfg = json_cfg(db, "mkc-source", "mkc", "mkc_slot", **{
        "message.key.columns": "public.t:region,code;public.nomatch:x"})
    reset("mkc.public.t", "mkc.public.u")
    code, body = post(cfg)
    assert code == 201, body
    m = consume("mkc.public.t", 1)[0]
    assert json.loads(m.key()) == {"code": "a", "region": "eu"}
    assert json.loads(m.value())["after"]["id"] == 1
    m = consume("mkc.public.u", 1)[0]
    assert json.loads(m.key()) == {"id": 1}
    wait_state("mkc-source", "RUNNING")
    psql(db, "INSERT INTO t VALUES (2, 'b', 'us', 20)",
         "UPDATE t SET v = 21 WHERE id = 2")
    msgs = consume("mkc.public.t", 3)[1:]
    assert [json.loads(m.key()) for m in msgs] == [{"code": "b", "region": "us"}] * 2
    assert [json.loads(m.value())["op"] for m in msgs] == ["c", "u"]
    remove("mkc-source", "mkc_slot")


def wait_slot_gone(db, slot):
    """Drops slot once its walsender let go of it."""
    for _ in range(150):
        try:
            psql("postgres", f"SELECT pg_drop_replication_slot('{slot}')")
            return
        except Exception:
            time.sleep(0.2)
    raise AssertionError(f"slot {slot} never became free")


def test_snapshot_when_needed():
    """A connector whose slot disappeared while it was paused: with
    when_needed it snapshots again (rows changed meanwhile are not lost),
    with initial it only streams from the new slot on."""
    db = "cdc_when"
    for n in ("wn-source", "wi-source"):
        http("DELETE", f"/connectors/{n}")
    fresh_db(db)
    for mode, name, prefix in (("when_needed", "wn-source", "wn"),
                               ("initial", "wi-source", "wi")):
        slot = prefix + "_slot"
        table = "w_" + prefix
        topic = f"{prefix}.public.{table}"
        psql(db, f"CREATE TABLE {table} (id int PRIMARY KEY, x int)",
             f"INSERT INTO {table} VALUES (1, 1), (2, 2)")
        reset(topic)
        code, body = post(json_cfg(db, name, prefix, slot, **{
            "snapshot.mode": mode, "table.include.list": "public." + table}))
        assert code == 201, body
        assert len(consume(topic, 2)) == 2
        wait_state(name, "RUNNING")
        psql(db, f"INSERT INTO {table} VALUES (3, 3)")
        assert len(consume(topic, 3)) == 3
        code, _ = http("PUT", f"/connectors/{name}/pause")
        assert code == 202
        wait_slot_gone(db, slot)
        psql(db, f"UPDATE {table} SET x = 10 WHERE id = 1")  # nobody reads it
        code, _ = http("PUT", f"/connectors/{name}/resume")
        assert code == 202
        wait_state(name, "RUNNING")
        deadline = time.time() + 30
        while time.time() < deadline:  # the new slot is there: stream
            if len(consume(topic, 100, timeout=2)) >= (6 if mode == "when_needed" else 3):
                break
        psql(db, f"INSERT INTO {table} VALUES (4, 4)")
        want = 7 if mode == "when_needed" else 4
        rows = [json.loads(m.value()) for m in consume(topic, want)]
        time.sleep(1)
        assert len(consume(topic, 100, timeout=2)) == want
        got = [(r["op"], r["after"]["id"], r["after"]["x"]) for r in rows]
        if mode == "when_needed":
            # a second snapshot of every row, the missed update included
            # (in heap order: the updated row moved)
            assert got[:3] == [("r", 1, 1), ("r", 2, 2), ("c", 3, 3)], got
            assert sorted(got[3:6]) == [("r", 1, 10), ("r", 2, 2), ("r", 3, 3)]
            assert got[6] == ("c", 4, 4)
        else:
            # streaming from the new slot on: the update is lost
            assert got == [("r", 1, 1), ("r", 2, 2), ("c", 3, 3),
                           ("c", 4, 4)], got
        remove(name, slot)


def test_heartbeats():
    """heartbeat.interval.ms: records {ts_ms} keyed {serverName} on
    __debezium-heartbeat.<prefix>, through the connector's converters (here
    StringConverter keys and AvroConverter values)."""
    db = "cdc_hb"
    http("DELETE", "/connectors/hb-source")
    fresh_db(db)
    psql(db, "CREATE TABLE h (id int PRIMARY KEY)", "INSERT INTO h VALUES (1)")
    cfg = seed_config(db, **{"database.server.name": "hbt", "slot.name": "hb_slot",
                             "publication.name": "hb_pub",
                             "value.converter": AVRO,
                             "heartbeat.interval.ms": "500"})
    cfg["name"] = "hb-source"
    topic = "__debezium-heartbeat.hbt"
    reset(topic, "hbt.public.h")
    code, body = post(cfg)
    assert code == 201, body
    msgs = consume(topic, 4, timeout=30)
    assert len(msgs) == 4
    assert {m.key() for m in msgs} == {b"Struct{serverName=hbt}"}
    deser = AvroDeserializer(SchemaRegistryClient({"url": REGISTRY}))
    ts = [deser(m.value(), SerializationContext(topic, MessageField.VALUE))["ts_ms"]
          for m in msgs]
    assert ts == sorted(ts) and ts[-1] - ts[0] >= 1000
    assert abs(ts[-1] - time.time() * 1000) < 60000
    assert json.loads(latest(topic + "-value")["schema"]) == {
        "type": "record", "name": "Heartbeat",
        "namespace": "io.debezium.connector.common",
        "fields": [{"name": "ts_ms", "type": "long"}],
        "connect.name": "io.debezium.connector.common.Heartbeat"}
    # the table topic itself is unaffected
    assert len(consume("hbt.public.h", 1)) == 1
    code, topics = http("GET", "/connectors/hb-source/topics")
    assert topic in topics["hb-source"]["topics"]
    code, body = post(dict(cfg, config=dict(cfg["config"],
                                            **{"heartbeat.interval.ms": "soon"})))
    assert code == 400 and "heartbeat.interval.ms" in body["message"]
    remove("hb-source", "hb_slot")


def test_heartbeat_action_query():
    """heartbeat.action.query runs at every heartbeat while streaming (here
    into a table the connector captures too: its changes arrive); a query
    Postgres refuses fails the task with Postgres's words."""
    db = "cdc_hba"
    http("DELETE", "/connectors/hba-source")
    fresh_db(db)
    psql(db, "CREATE TABLE beats (id serial PRIMARY KEY, at timestamptz)")
    cfg = json_cfg(db, "hba-source", "hba", "hba_slot", **{
        "heartbeat.interval.ms": "300",
        "heartbeat.action.query": "INSERT INTO beats (at) VALUES (now())"})
    reset("hba.public.beats")
    code, body = post(cfg)
    assert code == 201, body
    msgs = consume("hba.public.beats", 3, timeout=30)
    assert [json.loads(m.key())["id"] for m in msgs] == [1, 2, 3], msgs
    # a task started again resumes from its slot (no snapshot) and beats on
    assert http("POST", "/connectors/hba-source/restart")[0] in (200, 204)
    n = int(subprocess.run(
        ["psql", "-X", "-At", "-h", pg_params()[0], "-p", pg_params()[1],
         "-U", "postgres", "-d", db, "-c", "SELECT max(id) FROM beats"],
        capture_output=True, text=True, check=True).stdout)
    msgs = consume("hba.public.beats", n + 3, timeout=30)
    assert [json.loads(m.key())["id"] for m in msgs][:n + 3] == list(
        range(1, n + 4)), [m.key() for m in msgs]
    remove("hba-source", "hba_slot")
    bad = json_cfg(db, "hba-source", "hba", "hba_slot", **{
        "heartbeat.interval.ms": "300",
        "heartbeat.action.query": "INSERT INTO nowhere VALUES (1)"})
    code, body = post(bad)
    assert code == 201, body
    st = wait_state("hba-source", "FAILED")
    assert 'relation "nowhere" does not exist' in st["tasks"][0]["trace"], st
    remove("hba-source", "hba_slot")


def test_topic_creation_settings():
    """topic.creation.* (KIP-158) decide the partitions and configs of the
    topics the connector creates: the first listed group whose include
    matches, else the default group; bad settings are refused up front."""
    db = "cdc_tcr"
    http("DELETE", "/connectors/tcr-source")
    fresh_db(db)
    psql(db, "CREATE TABLE small (id int PRIMARY KEY, v int)",
         "CREATE TABLE big_one (id int PRIMARY KEY, v int)",
         "INSERT INTO small VALUES (1, 1)", "INSERT INTO big_one VALUES (1, 1)")
    settings = {
        "topic.creation.default.partitions": "2",
        "topic.creation.default.replication.factor": "-1",
        "topic.creation.default.cleanup.policy": "compact",
        "topic.creation.default.compression.type": "lz4",
        "topic.creation.default.max.message.bytes": "20000",
        "topic.creation.groups": "big",
        "topic.creation.big.include": r"tcr\.public\.big.*, nothing",
        "topic.creation.big.partitions": "3",
        "topic.creation.big.retention.ms": "7200000",
    }
    for bad, word in (({"topic.creation.default.partitions": None},
                       "topic.creation.default.partitions"),
                      ({"topic.creation.default.replication.factor": "3"},
                       "one broker"),
                      ({"topic.creation.big.partitions": "0"}, "at least 1"),
                      ({"topic.creation.default.retention.mss": "1"},
                       "Unknown topic config name: retention.mss"),
                      ({"topic.creation.default.cleanup.policy": "keep"},
                       "cleanup.policy"),
                      ({"topic.creation.big.include": "(unclosed"},
                       "topic.creation.big.include")):
        code, body = post(json_cfg(db, "tcr-source", "tcr", "tcr_slot",
                                   **{**settings, **bad}))
        assert code == 400 and word in body["message"], (bad, body)
    reset("tcr.public.small", "tcr.public.big_one")
    code, body = post(json_cfg(db, "tcr-source", "tcr", "tcr_slot", **settings))
    assert code == 201, body
    assert len(consume("tcr.public.small", 1)) == 1
    assert len(consume("tcr.public.big_one", 1)) == 1
    # one transaction of ~100 KB: batches cut under max.message.bytes
    psql(db, "INSERT INTO small SELECT g, g FROM generate_series(2, 2001) g")
    c = Consumer({"bootstrap.servers": samsa_client.bootstrap(), "group.id": "tcr"})
    ends, deadline = [], time.time() + 60
    while sum(ends) < 2001 and time.time() < deadline:
        ends = [c.get_watermark_offsets(TopicPartition("tcr.public.small", p),
                                        timeout=10)[1] for p in (0, 1)]
        time.sleep(0.2)
    c.close()
    assert sum(ends) == 2001, ends

    admin = samsa_client.admin_client()
    md = admin.list_topics(timeout=30).topics
    assert len(md["tcr.public.small"].partitions) == 2
    assert len(md["tcr.public.big_one"].partitions) == 3

    def configs(topic):
        r = ConfigResource(ResourceType.TOPIC, topic)
        c = admin.describe_configs([r])[r].result(30)
        return {k: c[k].value for k in ("cleanup.policy", "compression.type",
                                        "retention.ms")}

    assert configs("tcr.public.small") == {
        "cleanup.policy": "compact", "compression.type": "lz4",
        "retention.ms": "604800000"}
    # a group's topic configs are its own; partitions it may take from default
    assert configs("tcr.public.big_one") == {
        "cleanup.policy": "delete", "compression.type": "producer",
        "retention.ms": "7200000"}
    remove("tcr-source", "tcr_slot")


def test_regex_router_renames_topics():
    """RegexRouter transforms in the chain (after ExtractNewRecordState, in
    order) send a table's changes to the topic they name; two tables may
    share one.  Bad routers are refused up front."""
    db = "cdc_rtr"
    http("DELETE", "/connectors/rtr-source")
    fresh_db(db)
    psql(db, "CREATE TABLE a (id int PRIMARY KEY, v text)",
         "CREATE TABLE b (id int PRIMARY KEY, v text)",
         "CREATE TABLE c (id int PRIMARY KEY, v text)",
         "INSERT INTO a VALUES (1, 'a1')", "INSERT INTO b VALUES (2, 'b2')",
         "INSERT INTO c VALUES (3, 'c3')")
    route = {
        "transforms": "unwrap,first,second",
        "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState",
        "transforms.first.type": "org.apache.kafka.connect.transforms.RegexRouter",
        "transforms.first.regex": r"rtr\.public\.(.*)",
        "transforms.first.replacement": r"cdc_$1",
        "transforms.second.type": "org.apache.kafka.connect.transforms.RegexRouter",
        "transforms.second.regex": "cdc_(b|c)",
        "transforms.second.replacement": "cdc_bc",
    }
    def cfg(**over):
        return json_cfg_with(db, "rtr-source", "rtr", "rtr_slot", **over)

    for bad, word in (({"transforms.first.replacement": "x$2"}, "No group 2"),
                      ({"transforms.first.replacement": None},
                       "transforms.first.replacement"),
                      ({"transforms.first.regex": "(unclosed"},
                       "transforms.first.regex"),
                      ({"transforms.second.predicate": "p"}, "predicates")):
        code, body = post(cfg(**{**route, **bad}))
        assert code == 400 and word in body["message"], (bad, body)
    reset("cdc_a", "cdc_bc")
    code, body = post(cfg(**route))
    assert code == 201, body
    wait_state("rtr-source", "RUNNING")
    assert [json.loads(m.value()) for m in consume("cdc_a", 1)] == [
        {"id": 1, "v": "a1"}]
    assert len(consume("cdc_bc", 2)) == 2  # the snapshot is in
    psql(db, "UPDATE c SET v = 'c3u' WHERE id = 3")
    got = sorted((json.loads(m.key())["id"], json.loads(m.value())["v"])
                 for m in consume("cdc_bc", 3))
    assert got == [(2, "b2"), (3, "c3"), (3, "c3u")], got
    topics = samsa_client.admin_client().list_topics(timeout=30).topics
    assert not [t for t in topics if t.startswith("rtr.")], sorted(topics)
    remove("rtr-source", "rtr_slot")


def test_column_lists_leave_columns_out_of_values():
    """column.exclude.list (or column.include.list) leaves columns out of
    the values and their schemas, matching schema.table.column whole and
    ignoring case as Debezium does; the key keeps its columns; the two
    lists together are refused."""
    db = "cdc_cols"
    fresh_db(db)
    psql(db, "CREATE TABLE t (id int PRIMARY KEY, v text, secret text)",
         "INSERT INTO t VALUES (1, 'one', 'hush')")
    for name, prefix, lists in (
            ("cx-source", "cx", {"column.exclude.list": "PUBLIC.T.Secret"}),
            ("ci-source", "ci", {"column.include.list": r"public\.t\.(v|sec.*)"})):
        http("DELETE", f"/connectors/{name}")
        cfg = json_cfg(db, name, prefix, prefix + "_slot", **{
            **lists, "value.converter.schemas.enable": "true"})
        if name == "cx-source":
            both = json_cfg(db, name, prefix, prefix + "_slot", **{
                **lists, "column.include.list": "public.t.v"})
            code, body = post(both)
            assert code == 400 and "column" in body["message"], body
        reset(f"{prefix}.public.t")
        psql(db, "UPDATE t SET v = 'one', secret = 'hush' WHERE id = 1")
        code, body = post(cfg)
        assert code == 201, body
        wait_state(name, "RUNNING")
        assert len(consume(f"{prefix}.public.t", 1)) == 1  # the snapshot
        psql(db, "UPDATE t SET v = 'uno', secret = 'shh' WHERE id = 1")
        msgs = consume(f"{prefix}.public.t", 2)
        assert [json.loads(m.key()) for m in msgs] == [{"id": 1}] * 2
        values = [json.loads(m.value()) for m in msgs]
        fields = [f["field"] for f in values[0]["schema"]["fields"]
                  if f["field"] == "after"]
        assert fields == ["after"], values[0]["schema"]
        after_schema = next(f for f in values[0]["schema"]["fields"]
                            if f["field"] == "after")
        names = [f["field"] for f in after_schema["fields"]]
        if name == "cx-source":
            assert names == ["id", "v"], names
            assert [v["payload"]["after"] for v in values] == [
                {"id": 1, "v": "one"}, {"id": 1, "v": "uno"}], values
        else:
            assert names == ["v", "secret"], names
            assert [v["payload"]["after"] for v in values] == [
                {"v": "one", "secret": "hush"}, {"v": "uno", "secret": "shh"}], values
        remove(name, prefix + "_slot")


def test_skipped_operations():
    """skipped.operations leaves out the changes of the kinds listed (a
    skipped delete has no tombstone either); snapshot reads stay."""
    db = "cdc_skip"
    http("DELETE", "/connectors/skip-source")
    fresh_db(db)
    psql(db, "CREATE TABLE t (id int PRIMARY KEY, v text)",
         "INSERT INTO t VALUES (1, 'one')")
    code, body = post(json_cfg(db, "skip-source", "skip", "skip_slot",
                               **{"skipped.operations": "c,x"}))
    assert code == 400 and "skipped.operations" in body["message"], body
    reset("skip.public.t")
    code, body = post(json_cfg(db, "skip-source", "skip", "skip_slot",
                               **{"skipped.operations": "u, d"}))
    assert code == 201, body
    wait_state("skip-source", "RUNNING")
    assert len(consume("skip.public.t", 1)) == 1  # the snapshot
    psql(db, "UPDATE t SET v = 'uno' WHERE id = 1", "DELETE FROM t WHERE id = 1",
         "INSERT INTO t VALUES (2, 'two')", "UPDATE t SET v = 'dos' WHERE id = 2",
         "UPDATE t SET id = 20 WHERE id = 2",  # a key change is an update too
         "INSERT INTO t VALUES (3, 'three')")
    msgs = consume("skip.public.t", 4, timeout=8)  # 3 come, a 4th would be wrong
    assert [(json.loads(m.value())["op"], json.loads(m.value())["after"]["id"])
            for m in msgs] == [("r", 1), ("c", 2), ("c", 3)], [m.value() for m in msgs]
    remove("skip-source", "skip_slot")


def wait_streaming(name, timeout=60):
    """Until the task streams (progress.phase "streaming"): its slot and
    snapshot exist, so changes made from now on come as changes. RUNNING
    comes before the slot, and a change made then folds into the snapshot
    (an 'r', or nothing at all after a DELETE or TRUNCATE)."""
    deadline = time.time() + timeout
    st = None
    while time.time() < deadline:
        code, st = http("GET", f"/connectors/{name}/status")
        if code == 200 and st["tasks"] and st["tasks"][0]["state"] == "RUNNING" \
                and st["tasks"][0].get("progress", {}).get("phase") == "streaming":
            return st
        time.sleep(0.2)
    raise AssertionError(f"{name} never streamed: {st}")


def connector_cases(db, prefix, cases, changes, make_cfg, view):
    """For each (name, settings, want) of cases, one connector at a time
    (the test Postgres has ten replication slots, and other tests hold
    some): make_cfg(name, prefix, slot, settings) posted with table t
    emptied before, the SQL changes made once it runs, then [view(message)]
    must be want, with nothing after; the connector and its slot go."""
    for name, settings, want in cases:
        psql(db, "DELETE FROM t")
        cname, slot = f"{prefix}-{name}", f"{prefix}{name}_slot"
        topic = f"{prefix}{name}.public.t"
        reset(topic)
        try:
            code, body = post(make_cfg(cname, prefix + name, slot, settings))
            assert code == 201, body
            wait_streaming(cname)
            psql(db, *changes)
            got = [view(m) for m in consume(topic, len(want))]
            assert got == want, (name, got)
            assert len(consume(topic, len(want) + 1, timeout=2)) == len(want), name
        finally:
            remove(cname, slot)


def test_truncate_skipped_unless_asked_for():
    """TRUNCATE is skipped by default, as by Debezium 1.9
    (truncate.handling.mode=skip) and 3.x (skipped.operations=t). With
    truncate.handling.mode given, 1.9.7's rule: it comes only with include
    and no t in skipped.operations (skip always skips, whatever
    skipped.operations says); without it, 3.x's: skipped.operations given
    without t. truncate.handling.mode takes skip or include only."""
    db = "cdc_trunc"
    fresh_db(db)
    psql(db, "CREATE TABLE t (id int PRIMARY KEY)")
    code, body = post(json_cfg(db, "trunc-bad", "trbad", "trbad_slot",
                               **{"truncate.handling.mode": "sometimes"}))
    assert code == 400 and "truncate.handling.mode" in body["message"], body
    connector_cases(
        db, "tr",
        (("default", {}, ["c", "c"]),
         ("include", {"truncate.handling.mode": "include"}, ["c", "t", "c"]),
         ("none", {"skipped.operations": "none"}, ["c", "t", "c"]),
         ("skipt", {"skipped.operations": "u,t"}, ["c", "c"]),
         ("both", {"truncate.handling.mode": "include",
                   "skipped.operations": "t"}, ["c", "c"]),
         ("skipnone", {"truncate.handling.mode": "skip",
                       "skipped.operations": "none"}, ["c", "c"]),
         ("inclu", {"truncate.handling.mode": " Include ",
                    "skipped.operations": "u"}, ["c", "t", "c"])),
        ("INSERT INTO t VALUES (1)", "TRUNCATE t", "INSERT INTO t VALUES (2)"),
        lambda name, prefix, slot, over: json_cfg(db, name, prefix, slot, **over),
        lambda m: json.loads(m.value())["op"])


def test_unwrap_add_headers():
    """ExtractNewRecordState's add.headers: __op, __source_table ... on each
    record, as Connect's SimpleHeaderConverter writes them (text)."""
    db = "cdc_hdr"
    http("DELETE", "/connectors/hdr-source")
    fresh_db(db)
    psql(db, "CREATE TABLE t (id int PRIMARY KEY, v text)",
         "INSERT INTO t VALUES (1, 'one')")
    cfg = json_cfg_with(db, "hdr-source", "hdr", "hdr_slot", **{
        "transforms": "unwrap",
        "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState",
        "transforms.unwrap.add.headers": "op,source.table,source.ts_ms"})
    reset("hdr.public.t")
    code, body = post(cfg)
    assert code == 201, body
    wait_state("hdr-source", "RUNNING")
    assert len(consume("hdr.public.t", 1)) == 1  # the snapshot
    before = time.time() * 1000
    psql(db, "UPDATE t SET v = 'uno' WHERE id = 1")
    msgs = consume("hdr.public.t", 2)
    got = [{k: v for k, v in m.headers() if k.startswith("__") and
            k != "__samsa.lsn"} for m in msgs]
    assert [(h["__op"], h["__source_table"]) for h in got] == [
        (b"r", b"t"), (b"u", b"t")], got
    assert abs(int(got[1]["__source_ts_ms"]) - before) < 60000, got
    assert json.loads(msgs[1].value()) == {"id": 1, "v": "uno"}
    remove("hdr-source", "hdr_slot")


def test_unwrap_delete_tombstone_handling_mode():
    """ExtractNewRecordState's delete.tombstone.handling.mode (Debezium
    3.x), which wins over the 1.x drop.tombstones and delete.handling.mode
    when given; without either, 1.9's defaults (deletes and tombstones
    dropped). Each mode's records (key id, value) for an insert, its delete
    and a later insert."""
    db = "cdc_dthm"
    fresh_db(db)
    psql(db, "CREATE TABLE t (id int PRIMARY KEY, v text)")
    unwrap = {"transforms": "unwrap", "transforms.unwrap.type":
              "io.debezium.transforms.ExtractNewRecordState"}
    mode = "transforms.unwrap.delete.tombstone.handling.mode"
    code, body = post(json_cfg_with(db, "dt-bad", "dtbad", "dtbad_slot",
                                    **unwrap, **{mode: "rewrite-all"}))
    assert code == 400 and mode in body["message"], body
    c1, c2 = (1, {"id": 1, "v": "a"}), (2, {"id": 2, "v": "b"})
    r1, r2 = [(i, dict(v, __deleted="false")) for i, v in (c1, c2)]
    d1 = (1, {"id": 1, "v": None, "__deleted": "true"})  # REPLICA IDENTITY DEFAULT
    connector_cases(
        db, "dt",
        (("default", {}, [c1, c2]),
         ("drop", {mode: "drop"}, [c1, c2]),
         ("tomb", {mode: "tombstone",
                   "transforms.unwrap.delete.handling.mode": "rewrite"},
          [c1, (1, None), c2]),
         ("rw", {mode: "rewrite", "transforms.unwrap.drop.tombstones": "false"},
          [r1, d1, r2]),
         ("rwt", {mode: "rewrite-with-tombstone"}, [r1, d1, (1, None), r2]),
         ("dtt", {mode: " Delete-To-Tombstone"}, [c1, (1, None), c2])),
        ("INSERT INTO t VALUES (1, 'a')", "DELETE FROM t WHERE id = 1",
         "INSERT INTO t VALUES (2, 'b')"),
        lambda name, prefix, slot, over: json_cfg_with(
            db, name, prefix, slot, **unwrap, **over),
        lambda m: (json.loads(m.key())["id"],
                   json.loads(m.value()) if m.value() is not None else None))


def test_bytea_whatever_bytea_output():
    """bytea_output=escape set on the database (or the role) does not
    reach the events: samsa's connections ask for hex, so the snapshot
    and the stream both carry the bytes themselves (the escape text
    "\\001\\002ABC\\377" went out as the value)."""
    db = "cdc_byteaout"
    fresh_db(db)
    psql(db, f"ALTER DATABASE {db} SET bytea_output = 'escape'",
         "CREATE TABLE t (id int PRIMARY KEY, b bytea)",
         "INSERT INTO t VALUES (1, '\\x0102414243ff')")
    reset("byo.public.t")
    code, body = post(json_cfg(db, "byo-source", "byo", "byo_slot"))
    assert code == 201, body
    wait_streaming("byo-source")
    psql(db, "INSERT INTO t VALUES (2, '\\x00ff')")
    msgs = consume("byo.public.t", 2)
    assert [json.loads(m.value())["op"] for m in msgs] == ["r", "c"]
    got = [base64.b64decode(json.loads(m.value())["after"]["b"]) for m in msgs]
    assert got == [b"\x01\x02ABC\xff", b"\x00\xff"], got
    remove("byo-source", "byo_slot")


def test_numeric_values_of_any_length():
    """numeric under decimal.handling.mode=precise: values of any length
    (a 1501-digit one came out as 10^1098), VariableScaleDecimal without
    trailing zeros; NaN has no Decimal, and the connector stops with
    Debezium's words (it wrote a null or zero-length unscaled value)."""
    db = "cdc_numeric"
    fresh_db(db)
    psql(db, "CREATE TABLE t (id int PRIMARY KEY, v numeric, n numeric(1000, 2))",
         "INSERT INTO t VALUES (1, ('1' || repeat('0', 1500))::numeric, "
         "(repeat('9', 998) || '.99')::numeric)",
         "INSERT INTO t VALUES (2, -12.3400, -0.01)",
         "CREATE TABLE nan (id int PRIMARY KEY, v numeric)",
         "INSERT INTO nan VALUES (1, 'NaN')")
    reset("num.public.t")
    code, body = post(json_cfg(db, "num-source", "num", "num_slot", **{
        "table.include.list": "public.t"}))
    assert code == 201, body

    def unscaled(b64):
        return int.from_bytes(base64.b64decode(b64), "big", signed=True)

    rows = [json.loads(m.value())["after"] for m in consume("num.public.t", 2)]
    assert rows[0]["v"]["scale"] == 0 and unscaled(rows[0]["v"]["value"]) == 10 ** 1500
    assert unscaled(rows[0]["n"]) == int("9" * 1000)
    assert rows[1]["v"]["scale"] == 2 and unscaled(rows[1]["v"]["value"]) == -1234
    assert unscaled(rows[1]["n"]) == -1
    remove("num-source", "num_slot")
    st = post_until_failed(json_cfg(db, "nan-source", "nan", "nan_slot", **{
        "table.include.list": "public.nan"}), "nan-source",
        "set decimal handling mode to 'string'")
    assert "in column v" in st["tasks"][0]["trace"], st
    remove("nan-source", "nan_slot")


def test_arrays():
    """One-dimensional arrays as Debezium's ARRAY schemas of the optional
    element type (they were strings like "{1,2,3}"), under JsonConverter
    and AvroConverter (registered, and read back by confluent-kafka's
    AvroDeserializer); a two-dimensional array's elements are null, as
    Debezium's element converters make of a sub-array; bytea[] stays text,
    having no schema in Debezium."""
    db = "cdc_arrays"
    fresh_db(db)
    psql(db, "CREATE TABLE t (id int PRIMARY KEY, i int[], tx text[], "
             "n numeric(5,2)[], j jsonb[], tz timestamptz[], d date[], "
             "m int[][], by bytea[])",
         "INSERT INTO t VALUES (1, '{1,NULL,3}', ARRAY['a', NULL, 'b c', "
         "'q\"\\x', 'NULL'], '{1.5,-2}', ARRAY['{\"k\": 1}'::jsonb], "
         "'{\"2024-01-02 03:04:05+00\"}', '{1970-01-11}', '{{1,2},{3,4}}', "
         "'{\"\\\\x01\"}')")
    reset("arr.public.t", "arra.public.t")
    code, body = post(json_cfg(db, "arr-source", "arr", "arr_slot", **{
        "value.converter.schemas.enable": "true"}))
    assert code == 201, body
    m = consume("arr.public.t", 1)[0]
    v = json.loads(m.value())
    after = v["payload"]["after"]
    fields = {f["field"]: f for f in v["schema"]["fields"][1]["fields"]}
    assert fields["i"] == {"type": "array", "items": {"type": "int32", "optional": True},
                           "optional": True, "field": "i"}
    assert fields["n"]["items"]["name"] == "org.apache.kafka.connect.data.Decimal"
    assert fields["n"]["items"]["parameters"]["scale"] == "2"
    assert fields["tz"]["items"]["name"] == "io.debezium.time.ZonedTimestamp"
    assert fields["by"]["type"] == "string"
    assert after["i"] == [1, None, 3]
    assert after["tx"] == ["a", None, "b c", 'q"\\x', "NULL"]
    assert [int.from_bytes(base64.b64decode(x), "big", signed=True)
            for x in after["n"]] == [150, -200]
    assert [json.loads(x) for x in after["j"]] == [{"k": 1}]
    assert after["tz"] == ["2024-01-02T03:04:05Z"] and after["d"] == [10]
    assert after["m"] == [None, None]
    assert after["by"] == '{"\\\\x01"}'
    remove("arr-source", "arr_slot")
    code, body = post(json_cfg(db, "arra-source", "arra", "arra_slot", **{
        "value.converter": AVRO, "value.converter.schema.registry.url": "http://x"}))
    assert code == 201, body
    m = consume("arra.public.t", 1)[0]
    deser = AvroDeserializer(SchemaRegistryClient({"url": REGISTRY}))
    a = deser(m.value(), SerializationContext("arra.public.t", MessageField.VALUE))["after"]
    from decimal import Decimal
    assert a["i"] == [1, None, 3] and a["tx"] == after["tx"]
    assert a["n"] == [Decimal("1.50"), Decimal("-2.00")]
    assert a["d"] == [10] and a["m"] == [None, None]
    remove("arra-source", "arra_slot")


def snapshot_with_schemas(db, prefix, n, settings):
    """The first n records' "after" values of table t, and the Value
    schema's fields by name, from a connector of its own (JsonConverter
    with schemas; settings on top), which goes after."""
    reset(prefix + ".public.t")
    code, body = post(json_cfg(db, prefix + "-source", prefix, prefix + "_slot",
                               **dict(settings, **{
                                   "value.converter.schemas.enable": "true"})))
    assert code == 201, body
    try:
        msgs = [json.loads(m.value()) for m in consume(prefix + ".public.t", n)]
    finally:
        remove(prefix + "-source", prefix + "_slot")
    assert len(msgs) == n
    fields = {f["field"]: f for f in msgs[0]["schema"]["fields"][1]["fields"]}
    return [m["payload"]["after"] for m in msgs], fields


def test_interval():
    """interval as Debezium 1.9 makes it: io.debezium.time.MicroDuration
    (a month of 365.25 / 12 days), or io.debezium.time.Interval's ISO 8601
    text with interval.handling.mode=string; it was Postgres's text."""
    db = "cdc_interval"
    fresh_db(db)
    psql(db, "CREATE TABLE t (id int PRIMARY KEY, i interval)",
         "INSERT INTO t VALUES (1, '1 year 2 months 3 days 04:05:06.5'), "
         "(2, '-1 day 02:00:00'), (3, NULL)")
    code, body = post(json_cfg(db, "iv-bad", "ivbad", "ivbad_slot",
                               **{"interval.handling.mode": "iso"}))
    assert code == 400 and "interval.handling.mode" in body["message"], body
    for mode, want, name in (
            (None, [37091106500000, -79200000000, None],
             "io.debezium.time.MicroDuration"),
            ("string", ["P1Y2M3DT4H5M6.5S", "P0Y0M-1DT2H0M0S", None],
             "io.debezium.time.Interval")):
        vals, fields = snapshot_with_schemas(db, "iv" + (mode or "num"), 3, {
            "interval.handling.mode": mode})
        assert [v["i"] for v in vals] == want
        assert fields["i"]["name"] == name, fields


def test_money():
    """money as Debezium 1.9 writes it: a Decimal of scale 2, or the double
    under decimal.handling.mode=double (it was the text "$1,234.56")."""
    db = "cdc_money"
    fresh_db(db)
    psql(db, "CREATE TABLE t (id int PRIMARY KEY, m money)",
         "INSERT INTO t VALUES (1, 1234.56), (2, -0.01), (3, NULL)")
    for mode, want in (("precise", [123456, -1, None]),
                       ("double", [1234.56, -0.01, None])):
        vals, fields = snapshot_with_schemas(db, "money" + mode, 3, {
            "decimal.handling.mode": mode})
        got = [v["m"] for v in vals]
        if mode == "precise":
            got = [None if x is None else
                   int.from_bytes(base64.b64decode(x), "big", signed=True)
                   for x in got]
            assert fields["m"]["name"] == "org.apache.kafka.connect.data.Decimal"
            assert fields["m"]["parameters"] == {"scale": "2"}, fields
        assert got == want


def test_settings_samsa_does_not_do_are_refused():
    """Debezium settings samsa does not implement, and whose silent neglect
    would leak what they hide or drop what they ask for, are a 400 unless
    at their defaults."""
    db = "cdc_nodo"
    http("DELETE", "/connectors/nodo-source")
    fresh_db(db)
    psql(db, "CREATE TABLE t (id int PRIMARY KEY, card text)")
    for key, value in (("column.mask.with.4.chars", "public.t.card"),
                       ("column.mask.hash.SHA-256.with.salt.x", "public.t.card"),
                       ("column.truncate.to.2.chars", "public.t.card"),
                       ("snapshot.select.statement.overrides", "public.t"),
                       ("signal.data.collection", "public.signals"),
                       ("provide.transaction.metadata", "true"),
                       # accepted silently as adaptive before
                       ("time.precision.mode", "nanoseconds")):
        code, body = post(json_cfg_with(db, "nodo-source", "nodo", "nodo_slot",
                                        **{key: value}))
        assert code == 400 and key in body["message"], (key, body)
    code, body = post(json_cfg_with(db, "nodo-source", "nodo", "nodo_slot",
                                    **{"provide.transaction.metadata": "false"}))
    assert code == 201, body
    remove("nodo-source", "nodo_slot")
