"""Acceptance 5 (transactions): librdkafka's transactional producer against
the broker in SAMSA_BOOTSTRAP.

Transactions over three partitions are alternately committed and aborted; a
read_committed consumer sees exactly the committed records, a
read_uncommitted one every data record (librdkafka never hands control
records to the application, so their absence is checked by the count and
the values).  Then two producers with one transactional.id: the older one is
fenced.
"""

import os
import time

import pytest
from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError,
                             KafkaException, Producer, TopicPartition)

from samsa_client import create_topic, drop_failure, fail_once, failed, psql, unique

TRANSACTIONS = int(os.environ.get("SAMSA_PY_TXNS", "200"))
PER_TXN = 6  # two records per partition
PARTITIONS = 3


def consume_all(bootstrap, topic, isolation, expect, partitions=PARTITIONS,
                timeout=60):
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": unique("py-txn-reader"),
        "isolation.level": isolation,
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
              for p in range(partitions)])
    values = []
    eof = set()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                if len(values) >= expect and len(eof) == partitions:
                    break
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    if len(values) >= expect and len(eof) == partitions:
                        break
                    continue
                raise KafkaException(m.error())
            eof.discard(m.partition())
            values.append(m.value())
    finally:
        c.close()
    return values


def test_commit_abort_read_committed(bootstrap, admin):
    topic = unique("py-txn")
    create_topic(admin, topic, PARTITIONS)
    p = Producer({
        "bootstrap.servers": bootstrap,
        "transactional.id": unique("py-txn-id"),
        "transaction.timeout.ms": 30000,
    })
    p.init_transactions(30)
    committed, everything = [], []
    for t in range(TRANSACTIONS):
        p.begin_transaction()
        vals = [b"t%05d-r%d" % (t, r) for r in range(PER_TXN)]
        for r, v in enumerate(vals):
            p.produce(topic, value=v, partition=r % PARTITIONS)
        everything += vals
        if t % 2 == 0:
            p.commit_transaction(30)
            committed += vals
        else:
            # librdkafka purges what it has not sent yet when aborting:
            # send everything first so the aborted records are in the log.
            p.flush(30)
            p.abort_transaction(30)
    p.flush(30)

    got = consume_all(bootstrap, topic, "read_committed", len(committed))
    assert sorted(got) == sorted(committed)

    got = consume_all(bootstrap, topic, "read_uncommitted", len(everything))
    # Aborted records were written before the abort: every one is there,
    # and nothing else (no control record reaches the application).
    assert sorted(got) == sorted(everything)


def test_fencing(bootstrap, admin):
    topic = unique("py-txn-fence")
    create_topic(admin, topic, 1)
    tid = unique("py-fence-id")
    old = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid})
    old.init_transactions(30)
    old.begin_transaction()
    old.produce(topic, value=b"zombie")
    old.flush(10)
    new = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid})
    # The old producer's open transaction is aborted, then the new epoch
    # is handed out.
    new.init_transactions(60)
    with pytest.raises(KafkaException) as e:
        old.commit_transaction(30)
    assert e.value.args[0].fatal() or "fenced" in str(e.value).lower()
    new.begin_transaction()
    new.produce(topic, value=b"fresh")
    new.commit_transaction(30)
    got = consume_all(bootstrap, topic, "read_committed", 1, partitions=1)
    assert got == [b"fresh"]


def test_offsets_for_times_read_committed_stops_at_open_transaction(bootstrap, admin):
    """ListOffsets by timestamp: read_committed finds nothing inside a
    transaction still open (Kafka answers -1 at or past the last stable
    offset); read_uncommitted finds the record; after the commit both do."""
    topic = unique("py-txn-times")
    create_topic(admin, topic, 1)
    p = Producer({"bootstrap.servers": bootstrap,
                  "transactional.id": unique("py-txn-times-id")})
    p.init_transactions(30)
    t0 = int(time.time() * 1000) - 1000
    p.begin_transaction()
    p.produce(topic, value=b"open", partition=0)
    p.flush(30)

    def offset_at(isolation):
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("py-times"),
                      "isolation.level": isolation})
        try:
            return c.offsets_for_times([TopicPartition(topic, 0, t0)], 30)[0].offset
        finally:
            c.close()

    assert offset_at("read_uncommitted") == 0
    assert offset_at("read_committed") == -1
    p.commit_transaction(30)
    assert offset_at("read_committed") == 0


def test_transactional_offsets_for_a_group_with_members(bootstrap, admin):
    """A transactional producer commits offsets for a group whose consumers
    are running, naming only the group (as kafkajs, Sarama and a producer
    given ConsumerGroupMetadata(groupId) do): Kafka takes such a commit in
    any group state; samsa answered UNKNOWN_MEMBER_ID and every transaction
    aborted."""
    topic = unique("py-txn-grp")
    create_topic(admin, topic, 1)
    group = unique("py-txn-grp-g")
    member = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                       "auto.offset.reset": "earliest"})
    member.subscribe([topic])
    deadline = time.monotonic() + 30
    while not member.assignment() and time.monotonic() < deadline:
        member.poll(0.2)
    assert member.assignment(), "the member was never assigned"
    named_only = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": unique("py-txn-grp-id")})
    try:
        p.init_transactions(30)
        p.begin_transaction()
        p.produce(topic, value=b"v")
        p.send_offsets_to_transaction([TopicPartition(topic, 0, 7)],
                                      named_only.consumer_group_metadata(), 30)
        p.commit_transaction(30)
        (got,) = member.committed([TopicPartition(topic, 0)], 10)
        assert got.offset == 7
    finally:
        member.close()
        named_only.close()


def test_partition_added_by_a_retry_is_saved(bootstrap, admin):
    """AddPartitionsToTxn whose save failed, retried: the retry found the
    partition in memory and answered OK without saving, so the saved
    transaction did not name it and a restart would abort it there while
    the rest committed."""
    topic = unique("py-txn-retry")
    create_topic(admin, topic, 2)
    tid = unique("py-txn-retry-id")
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid})
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(topic, value=b"a", partition=0)
    assert p.flush(30) == 0
    trap = fail_once("transactions", f"NEW.transactional_id = '{tid}'")
    try:
        p.produce(topic, value=b"b", partition=1)
        assert p.flush(30) == 0
        assert failed(trap), "the save never failed"
        saved = psql("SELECT partitions FROM samsa.transactions "
                     f"WHERE transactional_id = '{tid}'")
        assert saved.count("[") == 3, saved  # [[tid, 0], [tid, 1]]
        p.commit_transaction(30)
    finally:
        drop_failure(trap, "transactions")
    got = consume_all(bootstrap, topic, "read_committed", 2, partitions=2)
    assert sorted(got) == [b"a", b"b"]


def test_transaction_survives_a_failed_flush_of_its_first_batch(bootstrap, admin):
    """A flush that fails reloads the partition's state from the log; a
    transaction whose first batch was in it was forgotten on the partition,
    and the producer's retry got INVALID_TXN_STATE: the transaction had to
    abort over one Postgres error."""
    topic = unique("py-txn-flushfail")
    create_topic(admin, topic, 1)
    tid = psql(f"SELECT tid FROM samsa.topics WHERE name = '{topic}'")
    p = Producer({"bootstrap.servers": bootstrap,
                  "transactional.id": unique("py-txn-flushfail-id")})
    p.init_transactions(30)
    p.begin_transaction()
    trap = fail_once("log", f"NEW.tid = {tid}")
    try:
        p.produce(topic, value=b"kept")
        assert p.flush(30) == 0
        assert failed(trap), "the flush never failed"
        p.commit_transaction(30)
    finally:
        drop_failure(trap, "log")
    assert consume_all(bootstrap, topic, "read_committed", 1, partitions=1) == [b"kept"]


def test_offsets_held_for_a_deleted_topic_do_not_wedge_the_commit(bootstrap, admin):
    """Offsets sent to a transaction for a topic deleted before EndTxn: the
    commit tried to write them again and again (a foreign key to the gone
    topic), never answered, and the transactional id answered
    CONCURRENT_TRANSACTIONS until samsa restarted."""
    data, gone = unique("py-txn-data"), unique("py-txn-gone")
    create_topic(admin, data, 1)
    create_topic(admin, gone, 1)
    tid = unique("py-txn-gone-id")
    group = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("py-txn-gone-g")})
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid})
    try:
        p.init_transactions(30)
        p.begin_transaction()
        p.produce(data, value=b"x")
        p.send_offsets_to_transaction([TopicPartition(gone, 0, 3)],
                                      group.consumer_group_metadata(), 30)
        admin.delete_topics([gone], operation_timeout=30)[gone].result(30)
        p.commit_transaction(20)
        p2 = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid})
        p2.init_transactions(20)
    finally:
        group.close()
    assert consume_all(bootstrap, data, "read_committed", 1, partitions=1) == [b"x"]
