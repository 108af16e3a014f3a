"""Issue 7, acceptance 1: samsa's Schema Registry as Confluent's clients use it.

confluent-kafka-python's SchemaRegistryClient against SAMSA_REGISTRY_URL:
register (idempotent), lookup, by id, versions, latest, delete, compatibility
and config; AvroSerializer and AvroDeserializer round-tripping records through
a topic on samsa; an incompatible evolution refused with 409/40901 under
BACKWARD and accepted under NONE; and plain HTTP checks of status codes and
Confluent's error bodies.  Ids surviving a restart: tests/interop/
registry_restart.sh.
"""

import json
import os
import struct
import urllib.error
import urllib.request

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from samsa_client import bootstrap, create_topic, unique

CT = "application/vnd.schemaregistry.v1+json"

USER_V1 = {
    "type": "record",
    "name": "User",
    "namespace": "samsa.test",
    "fields": [
        {"name": "id", "type": "int"},
        {"name": "name", "type": "string"},
    ],
}
# compatible under BACKWARD: the new field has a default
USER_V2 = dict(USER_V1, fields=USER_V1["fields"] + [
    {"name": "email", "type": ["null", "string"], "default": None}])
# incompatible under BACKWARD: a new field without a default
USER_BAD = dict(USER_V1, fields=USER_V1["fields"] + [
    {"name": "age", "type": "int"}])


def registry_url():
    url = os.environ.get("SAMSA_REGISTRY_URL", "").strip()
    if not url:
        raise RuntimeError(
            "SAMSA_REGISTRY_URL is not set: run through tests/run.sh interop")
    return url.rstrip("/")


@pytest.fixture(scope="module")
def sr():
    return SchemaRegistryClient({"url": registry_url()})


def avro(schema):
    return Schema(json.dumps(schema), schema_type="AVRO")


def http(method, path, body=None, content_type=CT):
    """(status, parsed JSON body) of a request to the registry."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(registry_url() + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", content_type)
    req.add_header("Accept", CT)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.headers["Content-Type"].startswith(CT)
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def test_register_lookup_versions_delete(sr):
    subject = unique("reg-users") + "-value"
    id1 = sr.register_schema(subject, avro(USER_V1))
    assert id1 > 0
    # idempotent, also through a fresh client (no client-side cache)
    assert SchemaRegistryClient({"url": registry_url()}).register_schema(
        subject, avro(USER_V1)) == id1

    found = sr.lookup_schema(subject, avro(USER_V1))
    assert (found.subject, found.version, found.schema_id) == (subject, 1, id1)
    assert json.loads(sr.get_schema(id1).schema_str) == USER_V1

    id2 = sr.register_schema(subject, avro(USER_V2))
    assert id2 != id1
    assert sr.get_versions(subject) == [1, 2]
    latest = sr.get_latest_version(subject)
    assert (latest.version, latest.schema_id) == (2, id2)
    assert json.loads(latest.schema.schema_str) == USER_V2
    v1 = sr.get_version(subject, 1)
    assert v1.schema_id == id1
    assert subject in sr.get_subjects()
    assert sorted(sr.get_schema_types()) == ["AVRO", "JSON", "PROTOBUF"]

    # the same schema under another subject keeps its id
    other = unique("reg-other") + "-value"
    assert sr.register_schema(other, avro(USER_V1)) == id1
    # (earlier runs on the same registry may share USER_V1)
    assert {subject, other} <= set(sr.get_subjects_by_schema_id(id1))

    assert sr.test_compatibility(subject, avro(USER_V2)) is True
    assert sr.test_compatibility(subject, avro(USER_BAD)) is False

    # soft delete of one version, then of the subject, then permanent
    assert sr.delete_version(subject, 1) == 1
    assert sr.get_versions(subject) == [2]
    assert sr.delete_subject(subject) == [2]
    assert subject not in sr.get_subjects()
    with pytest.raises(SchemaRegistryError) as e:
        sr.get_versions(subject)
    assert e.value.error_code == 40401
    assert sorted(sr.delete_subject(subject, permanent=True)) == [1, 2]
    # ids outlive their subjects
    assert json.loads(sr.get_schema(id2).schema_str) == USER_V2


def test_incompatible_refused_then_accepted_under_none(sr):
    subject = unique("reg-evolve") + "-value"
    sr.register_schema(subject, avro(USER_V1))
    assert sr.get_compatibility() == "BACKWARD"
    with pytest.raises(SchemaRegistryError) as e:
        sr.register_schema(subject, avro(USER_BAD))
    assert e.value.http_status_code == 409
    assert e.value.error_code == 40901
    assert "age" in e.value.error_message

    assert sr.set_compatibility(subject, "NONE") == {"compatibility": "NONE"}
    assert sr.get_compatibility(subject) == "NONE"
    assert sr.get_compatibility() == "BACKWARD"  # the global one is untouched
    bad_id = sr.register_schema(subject, avro(USER_BAD))
    assert sr.get_latest_version(subject).schema_id == bad_id
    assert sr.get_versions(subject) == [1, 2]

    # FULL_TRANSITIVE through the client's set_compatibility
    sr.set_compatibility(subject, "FULL_TRANSITIVE")
    assert sr.get_compatibility(subject) == "FULL_TRANSITIVE"
    assert sr.test_compatibility(subject, avro(USER_V2)) is False


def test_avro_serializer_round_trip(sr):
    topic = unique("reg-avro")
    from samsa_client import admin_client
    create_topic(admin_client(), topic, 2)
    subject = topic + "-value"

    ser = AvroSerializer(sr, json.dumps(USER_V2))
    deser = AvroDeserializer(sr)
    ctx = SerializationContext(topic, MessageField.VALUE)
    records = [{"id": i, "name": "user-%d" % i,
                "email": None if i % 3 else "u%d@example.com" % i}
               for i in range(200)]

    p = Producer({"bootstrap.servers": bootstrap(), "acks": "all",
                  "enable.idempotence": True})
    errors = []
    for r in records:
        p.produce(topic, key=b"%d" % r["id"], value=ser(r, ctx),
                  partition=r["id"] % 2,
                  on_delivery=lambda err, msg: err and errors.append(err))
    assert p.flush(30) == 0
    assert not errors

    registered = sr.get_latest_version(subject)
    assert registered.version == 1

    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": unique("reg-g"),
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, part, OFFSET_BEGINNING) for part in (0, 1)])
    got = []
    try:
        while len(got) < len(records):
            m = c.poll(10)
            assert m is not None, "timed out after %d records" % len(got)
            assert m.error() is None, m.error()
            raw = m.value()
            # Confluent's wire format: magic 0, the schema id, Avro binary
            assert raw[0] == 0
            assert struct.unpack(">I", raw[1:5])[0] == registered.schema_id
            got.append(deser(raw, ctx))
    finally:
        c.close()
    assert sorted(got, key=lambda r: r["id"]) == records


def test_http_status_codes_and_error_bodies(sr):
    subject = unique("reg-http") + "-value"
    sr.register_schema(subject, avro(USER_V1))

    st, body = http("GET", "/subjects/%s-nope/versions" % subject)
    assert (st, body["error_code"]) == (404, 40401)
    assert "not found" in body["message"]
    st, body = http("GET", "/subjects/%s/versions/42" % subject)
    assert (st, body["error_code"]) == (404, 40402)
    st, body = http("GET", "/schemas/ids/987654")
    assert (st, body["error_code"]) == (404, 40403)
    st, body = http("GET", "/subjects/%s/versions/zero" % subject)
    assert (st, body["error_code"]) == (422, 42202)
    st, body = http("POST", "/subjects/%s/versions" % subject,
                    {"schema": '{"type":"record","name":"X"}'})
    assert (st, body["error_code"]) == (422, 42201)
    st, body = http("POST", "/subjects/%s/versions" % subject,
                    {"schema": "not json at all"})
    assert (st, body["error_code"]) == (422, 42201)
    st, body = http("PUT", "/config/%s" % subject, {"compatibility": "SIDEWAYS"})
    assert (st, body["error_code"]) == (422, 42203)
    st, body = http("GET", "/no/such/endpoint")
    assert st == 404
    # References are {name, subject, version} objects.
    st, body = http("POST", "/subjects/%s/versions" % subject,
                    {"schema": json.dumps(USER_V1), "references": [1, "x", None]})
    assert (st, body["error_code"]) == (422, 42201), body
    # A subject name that is not UTF-8 names nothing (was a 500).
    for method in ("GET", "POST"):
        st, body = http(method, "/subjects/%FF/versions",
                        {"schema": json.dumps(USER_V1)} if method == "POST" else None)
        assert st == 404, (method, st, body)

    # plain application/json is accepted too, and the answers' shapes
    st, body = http("POST", "/subjects/%s/versions" % subject,
                    {"schema": json.dumps(USER_V1)}, content_type="application/json")
    assert st == 200 and set(body) == {"id"}
    st, body = http("GET", "/subjects/%s/versions/latest" % subject)
    assert st == 200
    assert set(body) == {"subject", "version", "id", "schema"}
    st, body = http("GET", "/schemas/ids/%d" % body["id"])
    assert st == 200 and "schemaType" not in body
    st, body = http("GET", "/config")
    assert (st, body) == (200, {"compatibilityLevel": "BACKWARD"})
    st, body = http("GET", "/mode")
    assert (st, body) == (200, {"mode": "READWRITE"})
    # A subject without its own setting says so (40408, 40409), unless
    # the global one is asked for in its place; its own is answered.
    st, body = http("GET", "/config/%s" % subject)
    assert (st, body["error_code"]) == (404, 40408), body
    st, body = http("GET", "/mode/%s" % subject)
    assert (st, body["error_code"]) == (404, 40409), body
    assert http("GET", "/config/%s?defaultToGlobal=true" % subject) == (
        200, {"compatibilityLevel": "BACKWARD"})
    assert http("GET", "/mode/%s?defaultToGlobal=true" % subject) == (
        200, {"mode": "READWRITE"})
    assert http("PUT", "/config/%s" % subject, {"compatibility": "FULL"})[0] == 200
    assert http("GET", "/config/%s" % subject) == (200, {"compatibilityLevel": "FULL"})
    st, body = http("GET", "/mode/%s" % subject)  # its config is not its mode
    assert (st, body["error_code"]) == (404, 40409), body
    assert http("DELETE", "/config/%s" % subject)[0] == 200

    # verbose compatibility answers carry the reason
    st, body = http("POST",
                    "/compatibility/subjects/%s/versions/latest?verbose=true" % subject,
                    {"schema": json.dumps(USER_BAD)})
    assert st == 200 and body["is_compatible"] is False
    assert any("age" in m for m in body["messages"])

    # a version soft deleted twice: 40406 the second time
    st, body = http("POST", "/subjects/%s/versions" % subject,
                    {"schema": json.dumps(USER_V2)})
    assert st == 200, body
    assert http("DELETE", "/subjects/%s/versions/2" % subject) == (200, 2)
    st, body = http("DELETE", "/subjects/%s/versions/2" % subject)
    assert (st, body["error_code"]) == (404, 40406), body
    assert http("DELETE", "/subjects/%s/versions/2?permanent=true" % subject) == (200, 2)
    st, body = http("DELETE", "/subjects/%s/versions/2" % subject)
    assert (st, body["error_code"]) == (404, 40402), body

    # soft, then permanent delete; permanent first is refused (40405)
    st, body = http("DELETE", "/subjects/%s?permanent=true" % subject)
    assert (st, body["error_code"]) == (404, 40405)
    assert http("DELETE", "/subjects/%s" % subject) == (200, [1])
    st, body = http("DELETE", "/subjects/%s" % subject)
    assert (st, body["error_code"]) == (404, 40404)
    assert http("DELETE", "/subjects/%s?permanent=true" % subject) == (200, [1])
    st, body = http("DELETE", "/subjects/%s" % subject)
    assert (st, body["error_code"]) == (404, 40401)


def test_other_schema_types_are_stored(sr):
    subject = unique("reg-json") + "-value"
    js = {"type": "object", "properties": {"a": {"type": "integer"}}}
    st, body = http("POST", "/subjects/%s/versions" % subject,
                    {"schema": json.dumps(js), "schemaType": "JSON"})
    assert st == 200
    sid = body["id"]
    st, body = http("GET", "/schemas/ids/%d" % sid)
    assert st == 200 and body["schemaType"] == "JSON"
    assert json.loads(body["schema"]) == js

    proto = 'syntax = "proto3";\nmessage M { int32 a = 1; }\n'
    st, body = http("POST", "/subjects/%s-p/versions" % subject,
                    {"schema": proto, "schemaType": "PROTOBUF",
                     "references": []})
    assert st == 200
    st, body = http("GET", "/subjects/%s-p/versions/1" % subject)
    assert st == 200 and body["schema"] == proto
    assert body["schemaType"] == "PROTOBUF"


def test_import_mode_keeps_ids_and_versions(sr):
    """Migrating from another registry: in IMPORT mode a version keeps the
    id and version number it had there (records written with that id read
    on), ids handed out later never meet imported ones, and outside IMPORT
    an id in the request is refused."""
    import random
    subject = unique("reg-import") + "-value"
    want = random.randint(2_000_000, 2_100_000)
    # Schemas of this test alone: an id belongs to a schema's content.
    v1 = dict(USER_V1, namespace="samsa.import%d" % want)
    v2 = dict(USER_V2, namespace=v1["namespace"])
    s1 = json.dumps(v1)
    st, body = http("POST", "/subjects/%s/versions" % subject, {"schema": s1, "id": want})
    assert (st, body["error_code"]) == (422, 42205), body

    assert http("PUT", "/mode/%s" % subject, {"mode": "IMPORT"}) == (200, {"mode": "IMPORT"})
    st, body = http("POST", "/subjects/%s/versions" % subject,
                    {"schema": s1, "id": want, "version": 7})
    assert (st, body) == (200, {"id": want})
    st, body = http("GET", "/subjects/%s/versions/7" % subject)
    assert st == 200 and body["id"] == want and body["version"] == 7
    st, body = http("GET", "/schemas/ids/%d" % want)
    assert st == 200 and json.loads(body["schema"])["name"] == "User"
    # The same again is idempotent; the schema under another id, or
    # another schema under its id, is refused.
    st, body = http("POST", "/subjects/%s/versions" % subject,
                    {"schema": s1, "id": want, "version": 7})
    assert (st, body) == (200, {"id": want})
    st, body = http("POST", "/subjects/%s/versions" % subject,
                    {"schema": s1, "id": want + 1, "version": 8})
    assert (st, body["error_code"]) == (422, 42207), body
    st, body = http("POST", "/subjects/%s/versions" % subject,
                    {"schema": json.dumps(v2), "id": want, "version": 8})
    assert (st, body["error_code"]) == (422, 42207), body

    # A subject with versions goes into IMPORT only when forced.
    other = unique("reg-import-other") + "-value"
    sr.register_schema(other, avro(USER_V1))
    st, body = http("PUT", "/mode/%s" % other, {"mode": "IMPORT"})
    assert (st, body["error_code"]) == (422, 42205), body
    assert http("PUT", "/mode/%s?force=true" % other, {"mode": "IMPORT"})[0] == 200
    assert http("DELETE", "/mode/%s" % other)[0] == 200

    # Back to READWRITE: new schemas get ids past the imported one.
    assert http("PUT", "/mode/%s" % subject, {"mode": "READWRITE"})[0] == 200
    new_id = sr.register_schema(subject, avro(v2))
    assert new_id > want
    st, body = http("GET", "/subjects/%s/versions/latest" % subject)
    assert body["version"] == 8 and body["id"] == new_id


# Avro's user.avsc as Python writes it (namespace first) and as Avro Java's
# Schema.toString() writes it, which Confluent stores and compares
# (AvroSchema.canonicalString()) and Java's KafkaAvroSerializer sends.
USER_AVSC_PY = ('{"namespace": "example.avro%s", "type": "record", "name": "User", '
                '"fields": [{"name": "name", "type": "string"}, '
                '{"name": "favorite_number", "type": ["int", "null"]}]}')
USER_AVSC_JAVA = ('{"type":"record","name":"User","namespace":"example.avro%s",'
                  '"fields":[{"name":"name","type":"string"},'
                  '{"name":"favorite_number","type":["int","null"]}]}')


def test_schema_identity_is_avros_form(sr):
    """Key order, {"type":"int"} for "int", a namespace in the name: the
    same schema, one id, one version.  Before, a schema registered by
    Python was not found by Java's serializer (40403), and with
    auto.register Java made a new id and version."""
    tag = unique("x").replace("-", "_")
    py, java = USER_AVSC_PY % tag, USER_AVSC_JAVA % tag
    subject = unique("reg-form") + "-value"
    st, body = http("POST", "/subjects/%s/versions" % subject, {"schema": py})
    assert st == 200, body
    sid = body["id"]
    st, body = http("POST", "/subjects/%s" % subject, {"schema": java})
    assert (st, body.get("id"), body.get("version")) == (200, sid, 1), body
    same = json.loads(py)
    del same["namespace"]
    same["name"] = "example.avro%s.User" % tag
    same["fields"][0]["type"] = {"type": "string"}
    for text in (java, json.dumps(same)):
        st, body = http("POST", "/subjects/%s/versions" % subject, {"schema": text})
        assert (st, body) == (200, {"id": sid})
    assert http("GET", "/subjects/%s/versions" % subject) == (200, [1])
    # what is stored and returned is Java's form, as from Confluent
    assert http("GET", "/schemas/ids/%d" % sid) == (200, {"schema": java})


def test_rows_of_older_versions_match(sr):
    """A row stored by an older samsa holds the client's text in its own
    key order: it is read in Java's form, so the same schema registered now
    gets its id, not a new one."""
    from samsa_client import psql
    tag = unique("x").replace("-", "_")
    py, java = USER_AVSC_PY % tag, USER_AVSC_JAVA % tag
    compact = json.dumps(json.loads(py), separators=(",", ":"))
    subject = unique("reg-old") + "-value"
    sid = int(psql(
        "WITH s AS (INSERT INTO samsa.schemas (schema_type, canonical,"
        " original, refs, fingerprint) VALUES ('AVRO', $$%s$$, $$%s$$, '[]',"
        " md5($$%s$$)) RETURNING id), v AS (INSERT INTO"
        " samsa.subject_versions (subject, version, schema_id) SELECT"
        " '%s', 1, id FROM s), g AS (UPDATE samsa.registry_state SET"
        " generation = generation + 1) SELECT id FROM s"
        % (compact, py, compact, subject)))
    st, body = http("POST", "/subjects/%s/versions" % subject, {"schema": java})
    assert (st, body) == (200, {"id": sid})
    assert http("GET", "/subjects/%s/versions" % subject) == (200, [1])
    assert http("GET", "/schemas/ids/%d" % sid) == (200, {"schema": java})


def old_row(text, subject, schema_type="AVRO"):
    """Stores text as a row of an older samsa (as version 1 of subject,
    compared as it is) and returns its id."""
    from samsa_client import psql
    return int(psql(
        "WITH s AS (INSERT INTO samsa.schemas (schema_type, canonical,"
        " original, refs, fingerprint) VALUES ('%s', $$%s$$, $$%s$$, '[]',"
        " md5($$%s$$)) RETURNING id), v AS (INSERT INTO"
        " samsa.subject_versions (subject, version, schema_id) SELECT"
        " '%s', 1, id FROM s), g AS (UPDATE samsa.registry_state SET"
        " generation = generation + 1) SELECT id FROM s"
        % (schema_type, text, text, text + subject, subject)))


def test_old_rows_of_one_schema_keep_their_ids(sr):
    """An older samsa gave each key order of a schema its own id, which the
    load makes one text: each subject still finds its own id, in lookup and
    register, as Confluent compares with the subject's own versions."""
    tag = unique("x").replace("-", "_")
    py, java = USER_AVSC_PY % tag, USER_AVSC_JAVA % tag
    a, b = unique("reg-oldA") + "-value", unique("reg-oldB") + "-value"
    ida = old_row(py, a)
    idb = old_row(java, b)
    assert ida != idb
    for subject, sid in ((a, ida), (b, idb)):
        for text in (py, java):
            st, body = http("POST", "/subjects/%s" % subject,
                            {"schema": text})
            assert (st, body.get("id"), body.get("version")) == \
                (200, sid, 1), body
            st, body = http("POST", "/subjects/%s/versions" % subject,
                            {"schema": text})
            assert (st, body) == (200, {"id": sid})
        assert http("GET", "/subjects/%s/versions" % subject) == (200, [1])
    # a new subject reuses an id of the schema (the first)
    c = unique("reg-oldC") + "-value"
    assert http("POST", "/subjects/%s/versions" % c,
                {"schema": java}) == (200, {"id": ida})


def test_stored_defaults_are_not_validated(sr):
    """Confluent validates defaults only for a schema new to the subject: a
    stored one with a default an older samsa accepted is still found by
    lookup and register, and still checked against for compatibility."""
    subject = unique("reg-olddef") + "-value"
    name = unique("V").replace("-", "_")
    bad = '{"type":"record","name":"%s","fields":[{"name":"s","type":' \
        '"string","default":null}]}' % name
    sid = old_row(bad, subject)
    st, body = http("POST", "/subjects/%s" % subject, {"schema": bad})
    assert (st, body.get("id"), body.get("version")) == (200, sid, 1), body
    assert http("POST", "/subjects/%s/versions" % subject,
                {"schema": bad}) == (200, {"id": sid})
    # new to the subject: refused
    other = unique("reg-olddef2") + "-value"
    st, body = http("POST", "/subjects/%s/versions" % other, {"schema": bad})
    assert (st, body["error_code"]) == (422, 42201), body
    # the stored version still takes part in the checks (BACKWARD)
    assert http("PUT", "/config/%s" % subject,
                {"compatibility": "BACKWARD"})[0] == 200
    to_int = {"schema": json.dumps({"type": "record", "name": name, "fields": [
        {"name": "s", "type": "int"}]})}
    st, body = http("POST", "/compatibility/subjects/%s/versions/latest"
                    % subject, to_int)
    assert (st, body) == (200, {"is_compatible": False}), body
    st, body = http("POST", "/subjects/%s/versions" % subject, to_int)
    assert (st, body["error_code"]) == (409, 40901), body
    assert http("GET", "/subjects/%s/versions" % subject) == (200, [1])


def test_stored_version_that_does_not_parse_is_not_skipped(sr):
    """A compatibility check never leaves out a stored version: one that
    does not parse makes the check an error, not a pass."""
    subject = unique("reg-noparse") + "-value"
    name = unique("W").replace("-", "_")
    old_row('{"type":"record","name":"%s","fields":[{"name":"s","type":'
            '"nosuch"}]}' % name, subject)
    assert http("PUT", "/config/%s" % subject,
                {"compatibility": "BACKWARD"})[0] == 200
    new = {"schema": json.dumps({"type": "record", "name": name, "fields": [
        {"name": "s", "type": "int"}]})}
    for path in ("/compatibility/subjects/%s/versions/latest",
                 "/subjects/%s/versions"):
        st, body = http("POST", path % subject, new)
        assert (st, body["error_code"]) == (500, 50001), body
    assert http("GET", "/subjects/%s/versions" % subject) == (200, [1])


def test_compatibility_with_latest_checks_the_latest_only(sr):
    """POST /compatibility/subjects/{s}/versions/latest checks the latest
    version, whatever the level, as Confluent's; /versions without a
    version checks what the level says (all under *_TRANSITIVE)."""
    subject = unique("reg-latest") + "-value"
    v1 = dict(USER_V1, namespace="samsa.latest")
    v2 = dict(USER_V2, namespace="samsa.latest")
    for v in (v1, v2):
        assert http("POST", "/subjects/%s/versions" % subject,
                    {"schema": json.dumps(v)})[0] == 200
    assert http("PUT", "/config/%s" % subject,
                {"compatibility": "BACKWARD_TRANSITIVE"})[0] == 200
    # "email" without a default: reads v2 (which has it), not v1
    nodef = dict(v2, fields=v1["fields"] + [
        {"name": "email", "type": ["null", "string"]}])
    body = {"schema": json.dumps(nodef)}
    for path, ok in (("/versions/latest", True), ("/versions/2", True),
                     ("/versions/1", False), ("/versions", False)):
        st, got = http("POST", "/compatibility/subjects/%s%s" % (subject, path), body)
        assert (st, got) == (200, {"is_compatible": ok}), path


def test_references_in_any_key_order_are_one_schema(sr):
    """References come back from Postgres with their keys sorted; one sent
    in another order is still the same schema: the same id, no new
    version."""
    subject = unique("reg-refs") + "-value"
    js = json.dumps({"type": "object", "properties": {"a": {"$ref": "other.json"}}})
    ref = {"version": 1, "subject": "other-value", "name": "other.json"}
    for _ in range(2):
        st, body = http("POST", "/subjects/%s/versions" % subject,
                        {"schema": js, "schemaType": "JSON", "references": [ref]})
        assert st == 200, body
    assert http("GET", "/subjects/%s/versions" % subject) == (200, [1])
    st, body = http("POST", "/subjects/%s" % subject,
                    {"schema": js, "schemaType": "JSON", "references": [ref]})
    assert (st, body["version"]) == (200, 1), body
    assert body["references"] == [{"name": "other.json", "subject": "other-value",
                                   "version": 1}]


def test_schema_type_change_is_incompatible(sr):
    """Another schema type than the latest version's is incompatible, as
    Confluent's "Incompatible because of different schema type" (409);
    under NONE it goes.  A JSON Schema is an object or a boolean."""
    subject = unique("reg-type") + "-value"
    v1 = dict(USER_V1, namespace="samsa.typechange")
    assert http("POST", "/subjects/%s/versions" % subject,
                {"schema": json.dumps(v1)})[0] == 200
    js = {"schema": json.dumps({"type": "object"}), "schemaType": "JSON"}
    st, body = http("POST", "/subjects/%s/versions" % subject, js)
    assert (st, body["error_code"]) == (409, 40901), body
    assert "different schema type" in body["message"]
    st, body = http("POST", "/compatibility/subjects/%s/versions/latest?verbose=true"
                    % subject, js)
    assert st == 200 and body["is_compatible"] is False, body
    assert http("PUT", "/config/%s" % subject, {"compatibility": "NONE"})[0] == 200
    st, body = http("POST", "/subjects/%s/versions" % subject, js)
    assert st == 200, body
    for bad in ("123", '"x"', "[]", "null"):
        st, body = http("POST", "/subjects/%s-j/versions" % subject,
                        {"schema": bad, "schemaType": "JSON"})
        assert (st, body["error_code"]) == (422, 42201), (bad, body)
    st, body = http("POST", "/subjects/%s-j/versions" % subject,
                    {"schema": "true", "schemaType": "JSON"})
    assert st == 200, body


def test_import_mode_needs_an_id(sr):
    """In IMPORT mode a registration without an id is refused (42205, "not
    in read-write mode"), as Confluent's checkRegisterMode."""
    subject = unique("reg-importnoid") + "-value"
    assert http("PUT", "/mode/%s" % subject, {"mode": "IMPORT"})[0] == 200
    st, body = http("POST", "/subjects/%s/versions" % subject,
                    {"schema": json.dumps(USER_V1)})
    assert (st, body["error_code"]) == (422, 42205), body
    assert "read-write mode" in body["message"]
    assert http("DELETE", "/mode/%s" % subject)[0] == 200


def test_reregistering_a_soft_deleted_schema(sr):
    """A soft-deleted version whose schema is registered again goes, as in
    Confluent's register: the schema is one version, the new one."""
    subject = unique("reg-undelete") + "-value"
    v1 = dict(USER_V1, namespace="samsa.undelete")
    v2 = dict(USER_V2, namespace="samsa.undelete")
    id1 = http("POST", "/subjects/%s/versions" % subject, {"schema": json.dumps(v1)})[1]["id"]
    assert http("POST", "/subjects/%s/versions" % subject,
                {"schema": json.dumps(v2)})[0] == 200
    assert http("DELETE", "/subjects/%s/versions/1" % subject) == (200, 1)
    assert http("POST", "/subjects/%s/versions" % subject,
                {"schema": json.dumps(v1)}) == (200, {"id": id1})
    assert http("GET", "/subjects/%s/versions?deleted=true" % subject) == (200, [2, 3])
    st, body = http("GET", "/subjects/%s/versions/3" % subject)
    assert (st, body["id"]) == (200, id1)


def test_normalize(sr):
    """normalize=true (confluent's normalize.schemas): attributes and
    aliases in any order are one schema, stored as Confluent stores it;
    without it they are two, as in Confluent's."""
    subject = unique("reg-norm") + "-value"
    ns = "samsa.norm" + unique("x").replace("-", "_")

    def rec(props, aliases):
        r = {"type": "record", "name": "N", "namespace": ns,
             "aliases": aliases, "fields": [{"name": "a", "type": "int"}]}
        r.update(props)
        return json.dumps(r)

    one = rec({"b": 1, "a": 2}, ["Y", "X"])
    two = rec({"a": 2, "b": 1}, ["X", "Y"])
    url = "/subjects/%s/versions?normalize=true" % subject
    st, body = http("POST", url, {"schema": one})
    assert st == 200, body
    sid = body["id"]
    assert http("POST", url, {"schema": two}) == (200, {"id": sid})
    st, body = http("POST", "/subjects/%s?normalize=true" % subject, {"schema": one})
    assert (st, body["id"], body["version"]) == (200, sid, 1), body
    assert http("GET", "/schemas/ids/%d" % sid) == (200, {"schema": (
        '{"type":"record","name":"N","namespace":"%s","fields":[{"name":"a",'
        '"type":"int"}],"a":2,"b":1,"aliases":["X","Y"]}' % ns)})
    assert http("GET", "/subjects/%s/versions" % subject) == (200, [1])
    st, body = http("POST", "/subjects/%s" % subject, {"schema": one})
    assert (st, body["error_code"]) == (404, 40403), body


def test_references_stored_with_other_keys(sr):
    """References stored by an older samsa kept whatever keys the client
    sent: they are compared by name, subject and version only."""
    from samsa_client import psql
    subject = unique("reg-refkeys") + "-value"
    js = json.dumps({"type": "object", "title": subject}, separators=(",", ":"))
    sid = int(psql(
        "WITH s AS (INSERT INTO samsa.schemas (schema_type, canonical,"
        " original, refs, fingerprint) VALUES ('JSON', $$%s$$, $$%s$$,"
        " '[{\"extra\": true, \"version\": 1, \"subject\": \"o-value\","
        " \"name\": \"o.json\"}]', md5($$%s$$)) RETURNING id), v AS (INSERT"
        " INTO samsa.subject_versions (subject, version, schema_id) SELECT"
        " '%s', 1, id FROM s), g AS (UPDATE samsa.registry_state SET"
        " generation = generation + 1) SELECT id FROM s"
        % (js, js, js + subject, subject)))
    st, body = http("POST", "/subjects/%s/versions" % subject,
                    {"schema": js, "schemaType": "JSON", "references": [
                        {"name": "o.json", "subject": "o-value", "version": 1}]})
    assert (st, body) == (200, {"id": sid})
    assert http("GET", "/subjects/%s/versions" % subject) == (200, [1])
