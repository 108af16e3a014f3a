"""Admin requests on the wire: the corners AdminClient libraries do not
reach (names and configs given twice, requests pipelined on one connection,
answers bigger than the request by far), each byte by byte over a raw
socket, with Kafka's answers as the reference.
"""
import struct

from confluent_kafka import Producer
from confluent_kafka.admin import ConfigResource, NewTopic

from samsa_client import create_topic, psql, unique
from test_protocol import connect, header, read_frame, send_frame

INVALID_REQUEST = 42
UNKNOWN_TOPIC = 3


def s16(b):
    return struct.pack(">h", len(b)) + b


def nstr(v):
    return struct.pack(">h", -1) if v is None else s16(v)


def arr(items):
    return struct.pack(">i", len(items)) + b"".join(items)


class Reader:
    def __init__(self, body):
        self.b, self.o = body, 0

    def take(self, fmt):
        v = struct.unpack_from(">" + fmt, self.b, self.o)
        self.o += struct.calcsize(">" + fmt)
        return v if len(v) > 1 else v[0]

    def str(self):
        n = self.take("h")
        if n < 0:
            return None
        v = self.b[self.o:self.o + n].decode()
        self.o += n
        return v

    def each(self, fn):
        return [fn() for _ in range(self.take("i"))]


def ask(s, key, version, body, correlation=1):
    send_frame(s, header(key, version, correlation) + body)


def answer(s, correlation=1):
    r = Reader(read_frame(s))
    assert r.take("i") == correlation
    return r


def create_topics_v4(topics):
    """topics: [(name, partitions, [(config, value)])]"""
    return arr([s16(n.encode()) + struct.pack(">ih", p, 1) + arr([]) +
                arr([s16(k.encode()) + nstr(v.encode()) for k, v in cfgs])
                for n, p, cfgs in topics]) + struct.pack(">i?", 30000, False)


def topic_results(r):
    """CreateTopics v4 / CreatePartitions v1: [(name, error, message)]"""
    r.take("i")  # throttle
    return r.each(lambda: (r.str(), r.take("h"), r.str()))


def describe_configs_v1(s, topic, keys, correlation=1):
    """{name: value} of DescribeConfigs v1 with keys (None: all)"""
    ask(s, 32, 1, arr([struct.pack(">b", 2) + s16(topic.encode()) +
                       (struct.pack(">i", -1) if keys is None else
                        arr([s16(k.encode()) for k in keys]))]) +
        struct.pack(">?", False), correlation)
    r = answer(s, correlation)
    r.take("i")
    (res,) = r.each(lambda: (r.take("h"), r.str(), r.take("b"), r.str(),
                             r.each(lambda: (r.str(), r.str(), r.take("?"), r.take("b"),
                                             r.take("?"), r.each(lambda: (r.str(), r.str(),
                                                                          r.take("b")))))))
    assert res[0] == 0, res
    return {c[0]: c[1] for c in res[4]}


def test_create_topics_config_given_twice_takes_the_last(bootstrap, admin):
    """Kafka keeps the last value of a config named twice; samsa answered
    TOPIC_ALREADY_EXISTS (Postgres's duplicate key) and created nothing."""
    name = unique("twice-cfg")
    s = connect(bootstrap)
    ask(s, 19, 4, create_topics_v4([(name, 1, [("retention.ms", "1000"),
                                               ("retention.ms", "2000")])]))
    assert topic_results(answer(s)) == [(name, 0, None)]
    assert describe_configs_v1(s, name, ["retention.ms"]) == {"retention.ms": "2000"}


def test_names_given_twice_are_refused(bootstrap, admin):
    """CreateTopics, DeleteTopics and CreatePartitions naming a topic twice
    answer INVALID_REQUEST for it and do nothing to it, as Kafka.  A double
    delete went ahead twice and freed the topic twice at shutdown."""
    kept, other = unique("twice-a"), unique("twice-b")
    create_topic(admin, kept, 1)
    s = connect(bootstrap)
    ask(s, 20, 1, arr([s16(kept.encode())] * 2) + struct.pack(">i", 30000))
    r = answer(s)
    r.take("i")
    assert r.each(lambda: (r.str(), r.take("h"))) == [(kept, INVALID_REQUEST)] * 2
    ask(s, 37, 1, arr([s16(kept.encode()) + struct.pack(">ii", 2, -1)] * 2) +
        struct.pack(">i?", 30000, False))
    assert [e[:2] for e in topic_results(answer(s))] == [(kept, INVALID_REQUEST)] * 2
    ask(s, 19, 4, create_topics_v4([(other, 1, []), (other, 2, [])]))
    assert [e[:2] for e in topic_results(answer(s))] == [(other, INVALID_REQUEST)] * 2
    md = admin.list_topics(timeout=10).topics
    assert len(md[kept].partitions) == 1 and other not in md


def test_deletes_of_one_topic_in_flight_together(bootstrap, admin):
    """Two deletes of one topic pipelined: the first deletes it, the second
    finds it gone (UNKNOWN_TOPIC_OR_PARTITION), as Kafka's controller."""
    name = unique("del-twice")
    create_topic(admin, name, 1)
    s = connect(bootstrap)
    req = arr([s16(name.encode())]) + struct.pack(">i", 30000)
    send_frame(s, header(20, 1, 1) + req + b"")
    send_frame(s, header(20, 1, 2) + req)
    errors = []
    for c in (1, 2):
        r = answer(s, c)
        r.take("i")
        errors += [e for _, e in r.each(lambda: (r.str(), r.take("h")))]
    assert errors == [0, UNKNOWN_TOPIC], errors


def test_config_changes_in_flight_together_both_count(bootstrap, admin):
    """Two IncrementalAlterConfigs of one topic pipelined on one connection
    both take effect; the second used to start from what was committed
    before the first and put retention.ms back."""
    name = unique("alter-two")
    create_topic(admin, name, 1)
    s = connect(bootstrap)

    def alter(key, value, correlation):
        send_frame(s, header(44, 0, correlation) +
                   arr([struct.pack(">b", 2) + s16(name.encode()) +
                        arr([s16(key) + struct.pack(">b", 0) + nstr(value)])]) +
                   struct.pack(">?", False))
    default = describe_configs_v1(s, name, ["retention.ms"], 9)["retention.ms"]
    alter(b"retention.ms", b"12345", 1)
    alter(b"cleanup.policy", b"compact", 2)
    for c in (1, 2):
        r = answer(s, c)
        r.take("i")
        assert r.each(lambda: (r.take("h"), r.str(), r.take("b"), r.str()))[0][0] == 0
    got = describe_configs_v1(s, name, ["retention.ms", "cleanup.policy"], 3)
    assert got == {"retention.ms": "12345", "cleanup.policy": "compact"}, got
    # and a delete of one key keeps the other
    send_frame(s, header(44, 0, 4) +
               arr([struct.pack(">b", 2) + s16(name.encode()) +
                    arr([s16(b"retention.ms") + struct.pack(">b", 1) + nstr(None)])]) +
               struct.pack(">?", False))
    answer(s, 4)
    got = describe_configs_v1(s, name, ["retention.ms", "cleanup.policy"], 5)
    assert got == {"retention.ms": default, "cleanup.policy": "compact"}, got


def test_partition_growths_in_flight_together(bootstrap, admin):
    """CreatePartitions to 3 and to 5 pipelined: both succeed and the topic
    has 5; the second answered TOPIC_ALREADY_EXISTS with Postgres's text."""
    name = unique("grow-two")
    create_topic(admin, name, 1)
    s = connect(bootstrap)
    for c, n in ((1, 3), (2, 5)):
        send_frame(s, header(37, 1, c) +
                   arr([s16(name.encode()) + struct.pack(">ii", n, -1)]) +
                   struct.pack(">i?", 30000, False))
    for c in (1, 2):
        assert [e[1] for e in topic_results(answer(s, c))] == [0]
    assert len(admin.list_topics(name, timeout=10).topics[name].partitions) == 5
    # Larger first: the smaller has nothing to add (its array was cut
    # short under the partitions it held: a heap overflow).
    for c, n in ((3, 8), (4, 6)):
        send_frame(s, header(37, 1, c) +
                   arr([s16(name.encode()) + struct.pack(">ii", n, -1)]) +
                   struct.pack(">i?", 30000, False))
    assert [e[1] for e in topic_results(answer(s, 3))] == [0]
    # As Kafka's controller, taking them in turn: the topic has 8 by the
    # time the growth to 6 is judged, so INVALID_PARTITIONS (it answered
    # OK when the growth to 8 was still in flight)
    second = topic_results(answer(s, 4))
    assert [e[1] for e in second] == [37], second
    assert "currently has 8 partitions" in second[0][2], second
    md = admin.list_topics(name, timeout=10).topics[name]
    assert sorted(md.partitions) == list(range(8))
    p = Producer({"bootstrap.servers": bootstrap})
    p.produce(name, value=b"x", partition=7)
    assert p.flush(30) == 0


def test_describe_configs_with_no_keys_lists_all(bootstrap, admin):
    """An empty key list means every key, as in Kafka's ConfigHelper."""
    name = unique("no-keys")
    create_topic(admin, name, 1)
    s = connect(bootstrap)
    every = describe_configs_v1(s, name, None)
    assert len(every) > 10 and "retention.ms" in every
    assert describe_configs_v1(s, name, [], 2) == every


def test_only_kafkas_own_topics_are_internal(bootstrap, admin):
    """A topic whose name begins with "__" (Debezium's heartbeats) is an
    ordinary topic: Java's listTopics() hid it, pattern subscriptions
    skipped it."""
    name = "__" + unique("heartbeat")
    create_topic(admin, name, 1)
    s = connect(bootstrap)
    ask(s, 3, 1, arr([s16(name.encode())]))
    r = answer(s)
    r.each(lambda: (r.take("i"), r.str(), r.take("i"), r.str()))
    r.take("i")
    (topic,) = r.each(lambda: (r.take("h"), r.str(), r.take("?"), r.each(
        lambda: (r.take("hii"), r.each(lambda: r.take("i")), r.each(lambda: r.take("i"))))))
    assert topic[:3] == (0, name, False), topic[:3]


def test_answers_far_bigger_than_their_request(bootstrap, admin):
    """A small request may need a big answer: every partition of a topic of
    20,000 (the answer ~2 MB), every config of many topics.  Answers were
    built under a limit sized for decoding the request, and what did not
    fit came back empty with no error."""
    name = unique("wide")
    fs = admin.create_topics([NewTopic(name, 20000, 1)], operation_timeout=60)
    fs[name].result(120)
    try:
        md = admin.list_topics(name, timeout=30).topics[name]
        assert md.error is None and len(md.partitions) == 20000
        md = admin.list_topics(timeout=30).topics[name]
        assert len(md.partitions) == 20000
    finally:
        admin.delete_topics([name], operation_timeout=60)[name].result(120)
    names = [unique("cfgs") for _ in range(150)]
    for f in admin.create_topics([NewTopic(n, 1, 1) for n in names],
                                 operation_timeout=60).values():
        f.result(120)
    try:
        got = admin.describe_configs([ConfigResource("topic", n) for n in names])
        for res, f in got.items():
            assert "retention.ms" in f.result(60), res
    finally:
        for f in admin.delete_topics(names, operation_timeout=60).values():
            f.result(120)


def test_group_offsets_of_a_wide_topic(bootstrap, admin):
    """OffsetFetch of every committed offset of a group (what
    kafka-consumer-groups --describe and lag exporters ask): with offsets
    on 1,000 partitions the answer outgrew the decoding limit and the
    connection was closed (300 were enough)."""
    from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
    topic, group = unique("wide-offsets"), unique("wide-offsets-g")
    create_topic(admin, topic, 1000)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        c.commit(offsets=[TopicPartition(topic, p, p + 1) for p in range(1000)],
                 asynchronous=False)
        got = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group)])[group].result(60)
        assert sorted((tp.partition, tp.offset) for tp in got.topic_partitions) == \
            [(p, p + 1) for p in range(1000)]
    finally:
        c.close()
        admin.delete_topics([topic], operation_timeout=60)[topic].result(120)


def test_delete_topics_v6_name_or_id(bootstrap, admin):
    """DeleteTopics v6 takes a name or an id for each topic, as Kafka's
    controller: neither, or both, is INVALID_REQUEST (neither answered
    UNKNOWN_TOPIC_ID)."""
    name = unique("del-v6")
    create_topic(admin, name, 1)
    tid = bytes.fromhex(psql(f"SELECT replace(topic_id::text, '-', '') FROM samsa.topics "
                             f"WHERE name = '{name}'"))

    def delete_v6(entries):
        body = bytes([len(entries) + 1]) + b"".join(
            (b"\x00" if n is None else bytes([len(n) + 1]) + n) + i + b"\x00"
            for n, i in entries) + struct.pack(">i", 30000) + b"\x00"
        s = connect(bootstrap)
        send_frame(s, struct.pack(">hhih", 20, 6, 1, 4) + b"test" + b"\x00" + body)
        r = read_frame(s)
        o = 4 + 1 + 4  # correlation, tags, throttle
        out = []
        for _ in range(r[o] - 1):
            o += 1
            n = r[o] - 1
            o += 1 + max(n, 0) + 16
            err = struct.unpack_from(">h", r, o)[0]
            o += 2
            m = r[o] - 1
            o += 1 + max(m, 0) + 1
            out.append(err)
        return out

    assert delete_v6([(None, bytes(16))]) == [INVALID_REQUEST]
    assert delete_v6([(name.encode(), tid)]) == [INVALID_REQUEST]
    assert name in admin.list_topics(timeout=10).topics
    assert delete_v6([(None, tid)]) == [0]


def test_repeats_in_one_request(bootstrap, admin):
    """As Kafka: Metadata answers a topic named three times once (each
    copy was a full answer: a 20,000-partition topic repeated made every
    entry megabytes), IncrementalAlterConfigs refuses a key given twice,
    and deleting a key no topic config has is no error."""
    name = unique("repeats")
    create_topic(admin, name, 1)
    s = connect(bootstrap)
    ask(s, 3, 1, arr([s16(name.encode())] * 3))
    r = answer(s)
    r.each(lambda: (r.take("i"), r.str(), r.take("i"), r.str()))
    r.take("i")
    topics = r.each(lambda: (r.take("h"), r.str(), r.take("?"), r.each(
        lambda: (r.take("hii"), r.each(lambda: r.take("i")), r.each(lambda: r.take("i"))))))
    assert [t[1] for t in topics] == [name]

    def alter(entries, correlation):
        send_frame(s, header(44, 0, correlation) +
                   arr([struct.pack(">b", 2) + s16(name.encode()) +
                        arr([s16(k) + struct.pack(">b", op) + nstr(v) for k, op, v in entries])]) +
                   struct.pack(">?", False))
        r = answer(s, correlation)
        r.take("i")
        return r.each(lambda: (r.take("h"), r.str(), r.take("b"), r.str()))[0][0]
    assert alter([(b"retention.ms", 0, b"1000"), (b"retention.ms", 0, b"2000")], 2) == \
        INVALID_REQUEST
    assert alter([(b"no.such.key", 1, None)], 3) == 0
