"""Acceptance 3: confluent-kafka-python against the broker in SAMSA_BOOTSTRAP.

An idempotent producer sends a million small records; an assigning consumer
(assign(), no group membership, no commits) reads every one back: count,
bytes and per-partition order are checked.  Plus the AdminClient calls a
Python user makes: create, list, describe, configs, partitions, delete.
"""

import os
import subprocess
import time

import pytest
from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError,
                             KafkaException, Producer, TopicCollection,
                             TopicPartition)
from confluent_kafka.admin import (AclBinding, AclBindingFilter,
                                   AclOperation, AclPermissionType,
                                   AlterConfigOpType, ConfigEntry,
                                   ConfigResource, ConfigSource, NewPartitions,
                                   NewTopic, ResourcePatternType,
                                   ResourceType)


from samsa_client import create_topic, unique

RECORDS = int(os.environ.get("SAMSA_PY_RECORDS", "1000000"))
PARTITIONS = 4
HEADER_EVERY = 1000


def key_of(i):
    return b"k%07d" % i


def value_of(i):
    # 10 to 40 bytes, the sequence number first so that a mix-up reads easily
    return b"%08d:" % i + b"abcdefghijklmnopqrstuvwxyz0123456789"[: (i * 7) % 31]


def headers_of(i):
    return [("seq", b"%d" % i), ("kind", b"every-%d" % HEADER_EVERY)]


def test_idempotent_producer_assigning_consumer_roundtrip(bootstrap, admin):
    topic = unique("py-core")
    create_topic(admin, topic, PARTITIONS)

    client_errors = []
    failed = []
    acked = [0] * PARTITIONS

    def on_error(err):
        client_errors.append(str(err))

    def on_delivery(err, msg):
        if err is not None:
            if len(failed) < 20:
                failed.append("%s (partition %s)" % (err, msg.partition()))
            else:
                failed.append(None)
        else:
            acked[msg.partition()] += 1

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 10,
        "queue.buffering.max.messages": 1000000,
        "message.timeout.ms": 180000,
        "error_cb": on_error,
    })
    started = time.monotonic()
    for i in range(RECORDS):
        kwargs = {"headers": headers_of(i)} if i % HEADER_EVERY == 0 else {}
        while True:
            try:
                producer.produce(topic, value=value_of(i), key=key_of(i),
                                 partition=i % PARTITIONS,
                                 on_delivery=on_delivery, **kwargs)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 20000 == 0:
            producer.poll(0)
    left = producer.flush(180)
    produce_s = time.monotonic() - started
    assert left == 0, "%d records never acknowledged; client errors: %s" % (
        left, client_errors[:10])
    assert not failed, "delivery failed for %d records, first: %s" % (
        len(failed), [f for f in failed if f][:5])
    assert sum(acked) == RECORDS, acked
    print("produced %d records in %.1fs (%.0f/s)"
          % (RECORDS, produce_s, RECORDS / produce_s))

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        # confluent-kafka will not build a consumer without a group id; this
        # one never subscribes nor commits, so no group is ever joined.
        "group.id": "samsa-interop-assign-only",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "error",
        "error_cb": on_error,
    })
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
                         for p in range(PARTITIONS)])
        next_seq = list(range(PARTITIONS))   # record i lives in partition i % P
        next_offset = [0] * PARTITIONS
        got = 0
        other_errors = []
        started = time.monotonic()
        deadline = started + 300
        while got < RECORDS:
            assert time.monotonic() < deadline, (
                "consumed %d of %d records in 300s; per partition %s; "
                "errors %s %s" % (got, RECORDS, next_offset,
                                  other_errors[:5], client_errors[:5]))
            for m in consumer.consume(num_messages=10000, timeout=1.0):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    if m.topic() == topic:
                        raise AssertionError("consume error on %s [%s]: %s"
                                             % (m.topic(), m.partition(), err))
                    other_errors.append(str(err))
                    continue
                p = m.partition()
                i = next_seq[p]
                if (m.offset() != next_offset[p] or m.value() != value_of(i)
                        or m.key() != key_of(i)):
                    raise AssertionError(
                        "partition %d: expected record %d at offset %d "
                        "(key %r value %r), got offset %d key %r value %r"
                        % (p, i, next_offset[p], key_of(i), value_of(i),
                           m.offset(), m.key(), m.value()))
                want_headers = headers_of(i) if i % HEADER_EVERY == 0 else None
                got_headers = m.headers()
                if (got_headers or None) != want_headers:
                    raise AssertionError("record %d: headers %r, expected %r"
                                         % (i, got_headers, want_headers))
                next_seq[p] += PARTITIONS
                next_offset[p] += 1
                got += 1
        consume_s = time.monotonic() - started
        print("consumed %d records in %.1fs (%.0f/s)"
              % (got, consume_s, got / consume_s))

        # Nothing after the last record: no duplicate crept in at the tail.
        extra = [m for m in consumer.consume(num_messages=100, timeout=2.0)
                 if m.error() is None]
        assert not extra, "records beyond the %d produced: %r" % (
            RECORDS, [(m.partition(), m.offset()) for m in extra[:5]])
        for p in range(PARTITIONS):
            lo, hi = consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=10, cached=False)
            assert (lo, hi) == (0, next_offset[p]), (p, lo, hi)
    finally:
        consumer.close()
    admin.delete_topics([topic], operation_timeout=30)[topic].result(30)


def _describe(admin, resource):
    return admin.describe_configs([resource])[resource].result(30)


def _wait(what, pred, timeout=30):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_admin_create_list_describe_alter_delete(bootstrap, admin):
    topic = unique("py-admin")
    create_topic(admin, topic, 3, {"retention.ms": "3600000"})

    md = admin.list_topics(timeout=30)
    assert topic in md.topics
    assert sorted(md.topics[topic].partitions) == [0, 1, 2]
    assert len(md.brokers) >= 1
    assert any("%s:%d" % (b.host, b.port) == bootstrap
               for b in md.brokers.values()), (
        "no broker advertised as %s: %s" % (bootstrap, md.brokers))

    again = admin.create_topics([
        NewTopic(topic, num_partitions=1, replication_factor=1)])
    with pytest.raises(KafkaException) as ei:
        again[topic].result(30)
    assert ei.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS

    desc = admin.describe_topics(TopicCollection([topic]))[topic].result(30)
    assert desc.name == topic
    assert [p.id for p in desc.partitions] == [0, 1, 2]
    for p in desc.partitions:
        assert p.leader is not None
        assert len(p.replicas) == 1 and len(p.isr) == 1

    res = ConfigResource(ResourceType.TOPIC, topic)
    cfg = _describe(admin, res)
    assert cfg["retention.ms"].value == "3600000"
    assert cfg["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert not cfg["retention.ms"].is_default
    assert cfg["cleanup.policy"].value == "delete"
    assert cfg["cleanup.policy"].is_default
    assert cfg["retention.bytes"].value == "-1"

    admin.incremental_alter_configs([ConfigResource(
        ResourceType.TOPIC, topic, incremental_configs=[
            ConfigEntry("retention.ms", "7200000",
                        incremental_operation=AlterConfigOpType.SET)])])[
        ConfigResource(ResourceType.TOPIC, topic)].result(30)
    _wait("retention.ms altered",
          lambda: _describe(admin, res)["retention.ms"].value == "7200000")

    admin.create_partitions([NewPartitions(topic, 5)])[topic].result(30)
    _wait("5 partitions",
          lambda: len(admin.list_topics(topic=topic, timeout=30)
                      .topics[topic].partitions) == 5)

    admin.delete_topics([topic], operation_timeout=30)[topic].result(30)
    _wait("topic gone",
          lambda: topic not in admin.list_topics(timeout=30).topics)


def test_sasl_client_hears_this_listener_takes_no_logins(bootstrap):
    """Without --kafka-auth a client set up for SASL is told, as Kafka's
    PLAINTEXT listener tells it, that a handshake is not valid here
    (ILLEGAL_SASL_STATE), instead of hanging or being let in."""
    errors = []
    p = Producer({"bootstrap.servers": bootstrap,
                  "security.protocol": "SASL_PLAINTEXT",
                  "sasl.mechanisms": "PLAIN", "sasl.username": "alice",
                  "sasl.password": "wonderland",
                  "error_cb": lambda e: errors.append(str(e))})
    with pytest.raises(KafkaException):
        p.list_topics(timeout=5)
    p.poll(1)  # serves error_cb
    assert any("Request not valid in current SASL state" in e
               for e in errors), errors


def test_acl_calls_say_security_is_disabled(admin):
    """No authorizer: creating and deleting ACLs fails with SECURITY_DISABLED,
    as against a Kafka broker without one.  (librdkafka drops
    DescribeAcls's top-level error: describing lists no ACLs.)"""
    acl = AclBinding(ResourceType.TOPIC, "t", ResourcePatternType.LITERAL,
                     "User:alice", "*", AclOperation.READ,
                     AclPermissionType.ALLOW)
    filt = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY,
                            None, None, AclOperation.ANY,
                            AclPermissionType.ANY)
    assert admin.describe_acls(filt, request_timeout=15).result(30) == []
    futures = list(admin.create_acls([acl], request_timeout=15).values())
    futures += list(admin.delete_acls([filt], request_timeout=15).values())
    for f in futures:
        with pytest.raises(KafkaException) as e:
            f.result(30)
        assert e.value.args[0].code() == KafkaError.SECURITY_DISABLED, e.value


def _stored_codecs(topic):
    """{codec number: batches} of topic's batches as samsa stored them"""
    out = subprocess.run(
        ["psql", "-X", "-At", "-d", os.environ["SAMSA_PG_CONNINFO"], "-c",
         "SELECT get_byte(l.batch, 22) & 7, count(*) FROM samsa.log l "
         "JOIN samsa.topics t USING (tid) WHERE t.name = '%s' GROUP BY 1"
         % topic], check=True, capture_output=True, text=True).stdout
    return {int(c): int(n) for c, n in (ln.split("|") for ln in out.split())}


def test_topic_compression_type_is_how_batches_are_stored(bootstrap, admin):
    """compression.type on a topic as in Kafka: batches are stored in that
    codec whatever the producer sent ("producer" keeps theirs), consumers
    read the same records, and the levels are checked."""
    topic = unique("py-codec")
    create_topic(admin, topic, 1, {"compression.type": "zstd",
                                   "compression.zstd.level": "10"})
    values = [b'{"id": %d, "note": "the same words again and again"}' % i
              for i in range(3000)]

    def produce(codec, vals):
        p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20,
                      "compression.type": codec})
        for v in vals:
            p.produce(topic, v, key=v[:10])
        assert p.flush(30) == 0

    produce("none", values[:1000])
    assert set(_stored_codecs(topic)) == {4}, _stored_codecs(topic)
    res = ConfigResource(ResourceType.TOPIC, topic)

    def alter(name, value):
        admin.incremental_alter_configs([ConfigResource(
            ResourceType.TOPIC, topic, incremental_configs=[
                ConfigEntry(name, value,
                            incremental_operation=AlterConfigOpType.SET)])])[
            res].result(30)

    alter("compression.type", "uncompressed")
    _wait("uncompressed", lambda: _describe(admin, res)[
        "compression.type"].value == "uncompressed")
    produce("lz4", values[1000:2000])
    assert set(_stored_codecs(topic)) == {4, 0}, _stored_codecs(topic)
    alter("compression.type", "producer")
    _wait("producer", lambda: _describe(admin, res)[
        "compression.type"].value == "producer")
    produce("snappy", values[2000:])
    assert set(_stored_codecs(topic)) == {4, 0, 2}, _stored_codecs(topic)

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("g"),
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = []
    deadline = time.monotonic() + 60
    while len(got) < len(values) and time.monotonic() < deadline:
        m = c.poll(1)
        if m is not None and m.error() is None:
            got.append(m.value())
    c.close()
    assert got == values

    with pytest.raises(KafkaException) as ei:
        alter("compression.lz4.level", "18")
    assert ei.value.args[0].code() == KafkaError.INVALID_CONFIG
    admin.delete_topics([topic], operation_timeout=30)[topic].result(30)
