"""Log compaction (cleanup.policy=compact), seen through librdkafka.

Acceptance: 100k updates over 1k keys compact to at most one record per key
(plus tombstones) within delete.retention.ms, a consumer from the beginning
sees the latest value of every key, tombstoned keys vanish once
delete.retention.ms has passed, offsets keep their gaps (a fetch inside a
removed range gets the next record, the log start does not move), an
aborted transactional update never wins for read_committed (nor after
the markers of transactions compacted away are gone), a keyless
record is refused with INVALID_RECORD, and a change of cleanup.policy by
IncrementalAlterConfigs takes effect.

The topics set what Kafka's own compaction tests set: a short segment.ms
(samsa's "active segment" is the newest batch while it is younger than
segment.ms), a low min.cleanable.dirty.ratio and a short
delete.retention.ms.  samsa's cleaner looks every second (Kafka's backs off
15 s).
"""

import threading
import time

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError,
                             KafkaException, Producer, TopicPartition)
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry,
                                   ConfigResource, ResourceType)

from samsa_client import create_topic, drop_failure, fail_once, failed, psql, unique

KEYS = 1000
UPDATES = 100_000
TOMBSTONE_EVERY = 20  # keys 0, 20, 40 ...: 50 tombstones
DELETE_RETENTION_MS = 5000

COMPACT = {
    "cleanup.policy": "compact",
    "segment.ms": "100",
    "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": str(DELETE_RETENTION_MS),
}


def read_all(bootstrap, topic, isolation="read_uncommitted", start=None,
             timeout=30):
    """Every record of partition 0 from start (default: the beginning) to
    the end: a list of (offset, key, value)."""
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": unique("py-compact-reader"),
        "isolation.level": isolation,
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "fetch.wait.max.ms": 100,
        "check.crcs": True,  # rewritten batches carry a correct CRC
    })
    c.assign([TopicPartition(topic, 0,
                             OFFSET_BEGINNING if start is None else start)])
    out = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                raise AssertionError("reading %s: no end of partition in %ss "
                                     "(%d records)" % (topic, timeout,
                                                       len(out)))
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    break
                raise KafkaException(m.error())
            out.append((m.offset(), m.key(), m.value()))
    finally:
        c.close()
    return out


def read_until(bootstrap, topic, last_offset, timeout):
    """Follows partition 0 from the beginning until the record at
    last_offset has been read."""
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": unique("py-compact-follower"),
        "enable.auto.commit": False,
        "fetch.wait.max.ms": 100,
        "check.crcs": True,
    })
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    out = []
    deadline = time.monotonic() + timeout
    try:
        while not out or out[-1][0] < last_offset:
            if time.monotonic() > deadline:
                raise AssertionError("following %s: offset %d not reached "
                                     "in %ss" % (topic, last_offset, timeout))
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                raise KafkaException(m.error())
            out.append((m.offset(), m.key(), m.value()))
    finally:
        c.close()
    return out


def latest(records):
    last = {}
    for _, k, v in records:
        last[k] = v
    return last


def produce_checked(producer, topic, items):
    """Produces (key, value) pairs and raises on any delivery error."""
    errors = []

    def done(err, msg):
        if err is not None:
            errors.append(err)

    for i, (k, v) in enumerate(items):
        while True:
            try:
                producer.produce(topic, key=k, value=v,
                                 on_delivery=done)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    assert not errors, errors[:3]


def wait_compacted(bootstrap, topic, ok, timeout, isolation="read_uncommitted"):
    """Reads the topic again and again until ok(records); returns the
    records and the seconds it took."""
    t0 = time.monotonic()
    while True:
        records = read_all(bootstrap, topic, isolation)
        if ok(records):
            return records, time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError("%s not compacted in %ss: %d records"
                                 % (topic, timeout, len(records)))
        time.sleep(0.5)


def test_compaction_keeps_latest_value_of_every_key(admin, bootstrap):
    topic = unique("py-compact")
    create_topic(admin, topic, 1, COMPACT)
    p = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "compression.type": "lz4",
        "linger.ms": 5,
        "batch.num.messages": 500,
        "queue.buffering.max.messages": 200000,
    })
    expect = {}
    items = []
    for i in range(UPDATES):
        k = b"key-%04d" % (i % KEYS)
        v = b"value-%06d-%s" % (i, b"x" * (i % 50))
        items.append((k, v))
        expect[k] = v
    for j in range(0, KEYS, TOMBSTONE_EVERY):
        k = b"key-%04d" % j
        items.append((k, None))
        expect[k] = None
    # One more update after the tombstones, in a batch of its own: samsa
    # keeps the newest batch's last record (as Kafka never cleans its
    # active segment), and it should not be a tombstone here.
    final = (b"key-0001", b"final")
    total = len(items) + 1
    # A consumer follows the log while it is written and compacted: it must
    # still end with the latest value of every key, offsets increasing.
    tail = {"records": [], "error": None}

    def follow():
        try:
            tail["records"] = read_until(bootstrap, topic, total - 1, 90)
        except Exception as e:  # reported by the test thread
            tail["error"] = e
    follower = threading.Thread(target=follow)
    follower.start()
    # In two halves, so that the second lands on a log compacted already
    # (and in the tail cache that compaction rewrote).
    half = UPDATES // 2
    t_produce = time.monotonic()
    produce_checked(p, topic, items[:half])
    time.sleep(1.5)
    produce_checked(p, topic, items[half:])
    produce_checked(p, topic, [final])
    items.append(final)
    expect[final[0]] = final[1]
    produced_s = time.monotonic() - t_produce
    follower.join()
    assert tail["error"] is None, tail["error"]
    followed = [o for o, _, _ in tail["records"]]
    assert followed == sorted(set(followed))
    assert latest(tail["records"]) == expect
    tombstoned = {k for k, v in expect.items() if v is None}

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("wm")})
    low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    c.close()
    assert (low, high) == (0, total)

    # At most one record per key: the latest value, or the tombstone.
    def compacted(records):
        return len(records) <= KEYS
    records, waited = wait_compacted(bootstrap, topic, compacted,
                                     DELETE_RETENTION_MS / 1000 + 40)
    keys = [k for _, k, _ in records]
    assert len(keys) == len(set(keys)), "a key twice after compaction"
    got = latest(records)
    for k, v in expect.items():
        if v is None:
            assert got.get(k) is None, (k, got.get(k))
        else:
            assert got.get(k) == v, (k, got.get(k), v)
    offsets = [o for o, _, _ in records]
    assert offsets == sorted(offsets)
    # The newest record keeps the end of the log where it was.
    assert offsets[-1] == total - 1
    print("\ncompaction: %d records produced in %.1fs, compacted to %d "
          "(%d tombstones) %.1fs after the last was acknowledged"
          % (total, produced_s, len(records),
             sum(1 for _, _, v in records if v is None), waited))

    # A fetch inside a removed range gets the next record there is.
    inside = next(o for o in range(1, total) if o not in set(offsets))
    after = read_all(bootstrap, topic, start=inside)
    assert after and after[0][0] == min(o for o in offsets if o > inside)

    # Compaction moved neither the log start nor the end (ListOffsets).
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("wm")})
    assert c.get_watermark_offsets(TopicPartition(topic, 0),
                                   timeout=10) == (0, total)
    c.close()

    # Tombstones go once delete.retention.ms has passed.
    def no_tombstones(records):
        return not any(k in tombstoned for _, k, _ in records)
    records, waited = wait_compacted(bootstrap, topic, no_tombstones,
                                     DELETE_RETENTION_MS / 1000 + 20)
    got = latest(records)
    assert len(records) == KEYS - len(tombstoned)
    assert got == {k: v for k, v in expect.items() if v is not None}
    print("compaction: tombstones gone %.1fs later, %d records left"
          % (waited, len(records)))


def test_keyless_record_refused(admin, bootstrap):
    topic = unique("py-compact-nokey")
    create_topic(admin, topic, 1, COMPACT)
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50,
                  "retries": 0})
    results = []

    def done(err, msg):
        results.append((msg.key(), err))

    p.produce(topic, key=b"k", value=b"v", on_delivery=done)
    p.flush(30)
    p.produce(topic, value=b"no key", on_delivery=done)
    p.flush(30)
    assert results[0] == (b"k", None)
    key, err = results[1]
    assert key is None and err is not None
    assert err.code() == KafkaError.INVALID_RECORD, err
    records = read_all(bootstrap, topic)
    assert [(k, v) for _, k, v in records] == [(b"k", b"v")]


def test_aborted_update_never_wins(admin, bootstrap):
    topic = unique("py-compact-txn")
    create_topic(admin, topic, 1, COMPACT)
    p = Producer({"bootstrap.servers": bootstrap,
                  "transactional.id": unique("py-compact-txid"),
                  "linger.ms": 5})
    p.init_transactions(30)

    def txn(keys, value, commit):
        p.begin_transaction()
        for k in keys:
            p.produce(topic, key=b"k%03d" % k, value=value + b"%03d" % k)
        # Delivered before the end: an abort would otherwise purge them
        # unsent, and the log would hold nothing of the transaction.
        assert p.flush(30) == 0
        if commit:
            p.commit_transaction(30)
        else:
            p.abort_transaction(30)

    txn(range(100), b"committed-1-", True)
    txn(range(50), b"aborted-", False)
    txn(range(50, 100), b"committed-2-", True)
    expect = {b"k%03d" % k: (b"committed-1-%03d" % k if k < 50
                             else b"committed-2-%03d" % k)
              for k in range(100)}

    # 200 records and three markers: the aborted update is in the log.
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("wm")})
    assert c.get_watermark_offsets(TopicPartition(topic, 0),
                                   timeout=10) == (0, 203)
    c.close()
    assert latest(read_all(bootstrap, topic, "read_committed")) == expect

    # Compacted: the aborted records and the superseded committed ones are
    # gone even for read_uncommitted.
    records, waited = wait_compacted(
        bootstrap, topic, lambda r: len(r) == 100, 40)
    assert latest(records) == expect
    committed = read_all(bootstrap, topic, "read_committed")
    assert len(committed) == 100
    assert latest(committed) == expect

    # delete.retention.ms later the markers of the first two transactions
    # are gone too (nothing of them is left): the log still reads whole,
    # and the producer goes on.
    time.sleep(DELETE_RETENTION_MS / 1000 + 2)
    for isolation in ("read_committed", "read_uncommitted"):
        records = read_all(bootstrap, topic, isolation)
        assert len(records) == 100, isolation
        assert latest(records) == expect, isolation
    txn([0], b"committed-3-", True)
    txn([1], b"aborted-again-", False)
    expect[b"k000"] = b"committed-3-000"
    assert latest(read_all(bootstrap, topic, "read_committed")) == expect
    p.flush(10)


def test_cleanup_policy_change_takes_effect(admin, bootstrap):
    topic = unique("py-compact-alter")
    create_topic(admin, topic, 1, {"segment.ms": "100",
                                   "min.cleanable.dirty.ratio": "0.01"})
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    items = [(b"a%d" % (i % 10), b"%d" % i) for i in range(2000)]
    produce_checked(p, topic, items)
    time.sleep(2.5)  # the cleaner would have run: the policy is delete
    assert len(read_all(bootstrap, topic)) == 2000
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("cleanup.policy", "compact,delete",
                    incremental_operation=AlterConfigOpType.SET)])
    for f in admin.incremental_alter_configs([res]).values():
        f.result(30)
    records, _ = wait_compacted(bootstrap, topic, lambda r: len(r) <= 10, 30)
    assert latest(records) == latest([(0, k, v) for k, v in items])


def test_partitions_with_nothing_cleanable_do_not_starve_the_others(admin, bootstrap):
    """Compacted partitions whose only batch is held back (the default
    segment.ms keeps the newest week from the cleaner) were passed over
    and picked again at top priority every tick: with a few of them no
    other compacted partition was ever cleaned."""
    stuck = unique("py-compact-stuck")
    create_topic(admin, stuck, 4, {"cleanup.policy": "compact"})
    p = Producer({"bootstrap.servers": bootstrap})
    for part in range(4):
        p.produce(stuck, key=b"k", value=b"v", partition=part)
    assert p.flush(30) == 0
    busy = unique("py-compact-busy")
    create_topic(admin, busy, 1, COMPACT)
    for r in range(10):
        produce_checked(p, busy, [(b"k%d" % (i % 10), b"v%d" % r) for i in range(200)])
        time.sleep(0.3)
    wait_compacted(bootstrap, busy, lambda recs: len(recs) <= 20, 60)


def test_producers_last_batch_outlives_compaction(admin, bootstrap):
    """An idempotent producer's newest batch, all of whose keys are newer
    elsewhere, is emptied, not deleted (as Kafka's cleaner does): producers'
    sequences are read back from the log after a failed flush (and at
    start-up), and without it the producer's next batch was refused as out
    of order, fatally for librdkafka."""
    topic = unique("py-compact-pstate")
    create_topic(admin, topic, 1, COMPACT)
    tid = psql(f"SELECT tid FROM samsa.topics WHERE name = '{topic}'")
    mine = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    other = Producer({"bootstrap.servers": bootstrap})
    for k in (b"k1", b"k2"):
        produce_checked(mine, topic, [(k, b"mine")])  # offsets 0, 1
    produce_checked(other, topic, [(b"k2", b"other")])  # 2: k2 newer
    for i in range(5):
        produce_checked(other, topic, [(b"churn", b"%d" % i)])
    # Compacted (the churn gone) past the producer's batch at offset 1.
    recs, _ = wait_compacted(bootstrap, topic,
                             lambda r: sum(k == b"churn" for _, k, _v in r) == 1, 60)
    assert [o for o, k, _v in recs if k == b"k2"] == [2], recs
    # offset 1's batch is there, header only
    assert psql(f"SELECT octet_length(batch) FROM samsa.log WHERE tid = {tid} "
                "AND partition = 0 AND base_offset = 1") == "61"
    # A search by time moves on past it to the next record (it answered
    # "none" when the emptied batch was the first late enough).
    ts = int(psql(f"SELECT max_timestamp FROM samsa.log WHERE tid = {tid} "
                  "AND partition = 0 AND base_offset = 1"))
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("py-pstate")})
    try:
        (found,) = c.offsets_for_times([TopicPartition(topic, 0, ts)], 10)
        first = int(psql(f"SELECT max_timestamp FROM samsa.log WHERE tid = {tid} "
                         "AND partition = 0 AND base_offset = 0"))
        assert found.offset == (0 if first >= ts else 2), (found, first, ts)
    finally:
        c.close()
    # A flush that fails reloads the partition's producers from the log.
    trap = fail_once("log", f"NEW.tid = {tid}")
    try:
        produce_checked(other, topic, [(b"k3", b"after")])
        assert failed(trap), "the flush never failed"
    finally:
        drop_failure(trap, "log")
    produce_checked(mine, topic, [(b"k4", b"mine again")])
