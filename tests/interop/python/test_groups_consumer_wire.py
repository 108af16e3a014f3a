"""The consumer group protocol (KIP-848) on the wire, spoken with a minimal
hand-written client, so that each step of a rebalance can be checked: the
clients (test_groups.py, the Java suite) only show its outcome.

- A member joining an empty group gets every partition at once.
- A second member joins: it reaches the new epoch with nothing, because
  the first still holds every partition; the first is told to keep half
  (its epoch unchanged) and reaches the new epoch only once a heartbeat
  reports the other half gone; only then does the second get that half.
  At no step do two members hold one partition.
- A lost answer: the previous epoch with owned partitions within the
  assignment is accepted; any other wrong epoch is FENCED_MEMBER_EPOCH; an
  unknown member is UNKNOWN_MEMBER_ID.
- OffsetCommit and OffsetFetch v9 check the member epoch
  (STALE_MEMBER_EPOCH) and the member.
- Leaving frees the partitions for the member left; a static member that
  leaves for now (epoch -2) keeps them for its instance id; a member that
  does not give up its partitions within its rebalance timeout is fenced.
- The assignment balances members with different subscriptions, one by
  a regular expression that takes in new topics.
- ConsumerGroupDescribe, and a classic JoinGroup or a DeleteGroups against
  the group while it has members.
- Bad heartbeats: INVALID_REQUEST with Kafka's message, an unknown
  assignor UNSUPPORTED_ASSIGNOR, a regex that does not compile
  INVALID_REGULAR_EXPRESSION.
"""

import struct
import time
import uuid

from samsa_client import create_topic, unique
from test_groups_wire import Conn, Reader, array, join_v1, read_join_v1, s16, s32, s64, string

NONE = 0
INCONSISTENT_GROUP_PROTOCOL = 23
UNKNOWN_MEMBER_ID = 25
INVALID_REQUEST = 42
NON_EMPTY_GROUP = 68
GROUP_ID_NOT_FOUND = 69
FENCED_MEMBER_EPOCH = 110
UNSUPPORTED_ASSIGNOR = 112
STALE_MEMBER_EPOCH = 113
INVALID_REGULAR_EXPRESSION = 128


# --- flexible encodings (compact strings and arrays, tagged fields) ---------

def uvarint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def cstring(v):
    if v is None:
        return uvarint(0)
    b = v.encode()
    return uvarint(len(b) + 1) + b


def carray(items):
    if items is None:
        return uvarint(0)
    return uvarint(len(items) + 1) + b"".join(items)


TAGS = uvarint(0)


class FlexReader(Reader):
    def uvarint(self):
        v = shift = 0
        while True:
            b = self.take(1)[0]
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v

    def cstring(self):
        n = self.uvarint()
        return None if n == 0 else self.take(n - 1).decode()

    def carray(self, f):
        n = self.uvarint()
        return None if n == 0 else [f() for _ in range(n - 1)]

    def tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())


def flex_call(c, key, version, body):
    """A request with header v2 (client id as int16 string, then tags)."""
    c.corr += 1
    msg = s16(key) + s16(version) + s32(c.corr) + string(c.client_id) + TAGS + body
    c.sock.sendall(s32(len(msg)) + msg)
    n = struct.unpack(">i", c._read(4))[0]
    r = FlexReader(c._read(n))
    assert r.i32() == c.corr
    r.tags()
    return r


def owned_list(parts):
    """{topic id bytes: [partitions]} -> the TopicPartitions array."""
    return [tid + carray([s32(p) for p in sorted(ps)]) + TAGS
            for tid, ps in sorted(parts.items())]


def heartbeat(c, group, member, epoch, topics=None, owned=None, regex=None,
              assignor=None, rebalance=-1, instance=None):
    body = (cstring(group) + cstring(member) + s32(epoch) + cstring(instance)
            + cstring(None) + s32(rebalance)
            + carray(None if topics is None else [cstring(t) for t in topics])
            + cstring(regex) + cstring(assignor)
            + carray(None if owned is None else owned_list(owned)) + TAGS)
    r = flex_call(c, 68, 1, body)
    out = {"throttle": r.i32(), "error": r.i16(), "message": r.cstring(),
           "member": r.cstring(), "epoch": r.i32(), "interval": r.i32()}
    if struct.unpack(">b", r.take(1))[0] < 0:
        out["assignment"] = None
    else:
        def tp():
            tid = r.take(16)
            ps = r.carray(r.i32)
            r.tags()
            return tid, ps
        out["assignment"] = {tid: set(ps) for tid, ps in r.carray(tp)}
        r.tags()
    r.tags()
    r.done()
    return out


def join(c, group, member, topics):
    return heartbeat(c, group, member, 0, topics=topics, owned={},
                     rebalance=30000)


def describe(c, group):
    r = flex_call(c, 69, 0, carray([cstring(group)]) + b"\x00" + TAGS)
    r.i32()

    def assignment():
        def tp():
            tid, name, ps = r.take(16), r.cstring(), r.carray(r.i32)
            r.tags()
            return name, set(ps)
        a = dict(r.carray(tp))
        r.tags()
        return a

    def member():
        m = {"id": r.cstring(), "instance": r.cstring(), "rack": r.cstring(),
             "epoch": r.i32(), "client": r.cstring(), "host": r.cstring(),
             "topics": r.carray(r.cstring), "regex": r.cstring(),
             "assignment": assignment(), "target": assignment()}
        r.tags()
        return m

    def group_():
        g = {"error": r.i16(), "message": r.cstring(), "id": r.cstring(),
             "state": r.cstring(), "epoch": r.i32(),
             "assignment_epoch": r.i32(), "assignor": r.cstring(),
             "members": r.carray(member)}
        r.i32()
        r.tags()
        return g
    groups = r.carray(group_)
    r.tags()
    r.done()
    return groups[0]


def commit_v9(c, group, member, epoch, topic, partition, offset):
    part = s32(partition) + s64(offset) + s32(-1) + cstring("") + TAGS
    body = (cstring(group) + s32(epoch) + cstring(member) + cstring(None)
            + carray([cstring(topic) + carray([part]) + TAGS]) + TAGS)
    r = flex_call(c, 8, 9, body)
    r.i32()
    errs = []

    def partition_():
        r.i32()
        errs.append(r.i16())
        r.tags()

    def topic_():
        r.cstring()
        r.carray(partition_)
        r.tags()
    r.carray(topic_)
    r.tags()
    return errs[0]


def fetch_v9(c, group, member, epoch, topic, partition):
    """OffsetFetch v9 of one partition: (the group's error, the offset)."""
    body = (carray([cstring(group) + cstring(member) + s32(epoch)
                    + carray([cstring(topic) + carray([s32(partition)]) + TAGS])
                    + TAGS]) + b"\x00" + TAGS)
    r = flex_call(c, 9, 9, body)
    r.i32()
    offsets = []

    def partition_():
        r.i32()
        offsets.append(r.i64())
        r.i32()
        r.cstring()
        r.i16()
        r.tags()

    def topic_():
        r.cstring()
        r.carray(partition_)
        r.tags()

    def group_():
        r.cstring()
        r.carray(topic_)
        err = r.i16()
        r.tags()
        return err
    (err,) = r.carray(group_)
    r.tags()
    r.done()
    return err, offsets[0] if offsets else None


def total(assignment):
    return sum(len(ps) for ps in (assignment or {}).values())


def disjoint(*assignments):
    seen = set()
    for a in assignments:
        for tid, ps in (a or {}).items():
            for p in ps:
                assert (tid, p) not in seen, "partition %d held twice" % p
                seen.add((tid, p))
    return seen


def test_rebalance_step_by_step(admin, bootstrap):
    topic = unique("cg848")
    create_topic(admin, topic, 4)
    group = unique("cg848-group")
    c = Conn(bootstrap, client_id="cg-wire")
    a_id, b_id = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        a = join(c, group, a_id, [topic])
        assert a["error"] == NONE, a
        assert a["member"] == a_id and a["epoch"] >= 1
        assert a["interval"] == 5000
        assert total(a["assignment"]) == 4, a
        (tid,) = a["assignment"].keys()
        a_epoch = a["epoch"]
        a_held = a["assignment"]

        # B joins: the new epoch, but nothing while A holds everything.
        b = join(c, group, b_id, [topic])
        assert b["error"] == NONE, b
        assert b["epoch"] > a_epoch
        assert total(b["assignment"]) == 0, b
        b_epoch = b["epoch"]

        # A is told to keep two: same epoch until it reports the rest gone.
        a2 = heartbeat(c, group, a_id, a_epoch)
        assert a2["error"] == NONE and a2["epoch"] == a_epoch, a2
        assert total(a2["assignment"]) == 2, a2
        kept = a2["assignment"][tid]
        disjoint(a2["assignment"], b["assignment"])

        # A commits at its epoch; a commit at another epoch is stale.
        assert commit_v9(c, group, a_id, a_epoch, topic, min(kept), 7) == NONE
        assert commit_v9(c, group, a_id, a_epoch + 5, topic, min(kept), 7) == STALE_MEMBER_EPOCH
        assert commit_v9(c, group, "nobody", 1, topic, 0, 7) == UNKNOWN_MEMBER_ID

        # OffsetFetch v9 checks the member as Kafka does; without member
        # and epoch (a tool) it reads.
        p = min(kept)
        assert fetch_v9(c, group, a_id, a_epoch, topic, p) == (NONE, 7)
        assert fetch_v9(c, group, None, -1, topic, p) == (NONE, 7)
        assert fetch_v9(c, group, a_id, a_epoch + 5, topic, p)[0] == STALE_MEMBER_EPOCH
        assert fetch_v9(c, group, "nobody", 1, topic, p)[0] == UNKNOWN_MEMBER_ID

        # B asks again: still waiting, and nothing changed for it.
        b2 = heartbeat(c, group, b_id, b_epoch)
        assert b2["error"] == NONE and b2["epoch"] == b_epoch
        assert b2["assignment"] is None, b2

        # A reports what it owns: the revoked two are gone.
        a3 = heartbeat(c, group, a_id, a_epoch, owned={tid: kept})
        assert a3["error"] == NONE and a3["epoch"] == b_epoch, a3
        assert a3["assignment"] == {tid: kept}

        # KIP-1251 (Kafka 4.3): a commit at A's older epoch, sent before
        # it heard of its new one, commits what it has held since and
        # holds still, but not what it gave up.
        assert commit_v9(c, group, a_id, a_epoch, topic, min(kept), 8) == NONE
        gone = min(set(range(4)) - kept)
        assert commit_v9(c, group, a_id, a_epoch, topic, gone, 8) == STALE_MEMBER_EPOCH

        # Now B gets the other two.
        b3 = heartbeat(c, group, b_id, b_epoch)
        assert b3["error"] == NONE and b3["epoch"] == b_epoch
        assert len(disjoint(a3["assignment"], b3["assignment"])) == 4
        assert b3["assignment"][tid] == set(range(4)) - kept

        # A's answer lost: its previous epoch with owned partitions within
        # its assignment is fine; anything else is fenced.
        a4 = heartbeat(c, group, a_id, a_epoch, owned={tid: kept})
        assert a4["error"] == NONE and a4["epoch"] == b_epoch, a4
        bad = heartbeat(c, group, a_id, b_epoch + 7)
        assert bad["error"] == FENCED_MEMBER_EPOCH, bad
        assert "epoch" in bad["message"]
        stray = heartbeat(c, group, "nobody", 3)
        assert stray["error"] == UNKNOWN_MEMBER_ID

        d = describe(c, group)
        assert d["error"] == NONE and d["state"] == "Stable", d
        assert d["assignor"] == "uniform"
        assert sorted(m["id"] for m in d["members"]) == sorted([a_id, b_id])
        for m in d["members"]:
            assert m["topics"] == [topic] and m["client"] == "cg-wire"
            assert m["assignment"] == m["target"] and len(m["assignment"][topic]) == 2

        # The group belongs to the consumer protocol while it has members.
        jr = read_join_v1(c.recv(join_v1(c, group, "", b"\x00\x00\x00\x00\x00\x00")))
        assert jr["error"] == INCONSISTENT_GROUP_PROTOCOL, jr
        r = c.call(42, 0, array([string(group)]))
        r.i32()
        assert r.array(lambda: (r.string(), r.i16())) == [(group, NON_EMPTY_GROUP)]

        # A leaves: B gets everything at a new epoch.
        left = heartbeat(c, group, a_id, -1)
        assert left["error"] == NONE and left["epoch"] == -1
        b4 = heartbeat(c, group, b_id, b_epoch)
        assert b4["error"] == NONE and b4["epoch"] > b_epoch
        assert b4["assignment"] == {tid: set(range(4))}
        assert commit_v9(c, group, b_id, b4["epoch"], topic, 0, 9) == NONE
        # At B's previous epoch: its first two yes, A's two (B's only from
        # the new epoch) no.
        assert commit_v9(c, group, b_id, b_epoch, topic, gone, 9) == NONE
        assert commit_v9(c, group, b_id, b_epoch, topic, min(kept), 9) == STALE_MEMBER_EPOCH

        heartbeat(c, group, b_id, -1)
        d = describe(c, group)
        assert d["state"] == "Empty" and d["members"] == [], d
        # An empty group goes like any other.
        r = c.call(42, 0, array([string(group)]))
        r.i32()
        assert r.array(lambda: (r.string(), r.i16())) == [(group, NONE)]
    finally:
        c.close()


def test_describe_classic_and_unknown(bootstrap):
    c = Conn(bootstrap)
    try:
        d = describe(c, unique("nosuch"))
        assert d["error"] == GROUP_ID_NOT_FOUND and "not found" in d["message"]
        group = unique("classic")
        jr = read_join_v1(c.recv(join_v1(c, group, "", b"\x00\x00\x00\x00\x00\x00")))
        assert jr["error"] == NONE
        d = describe(c, group)
        assert d["error"] == GROUP_ID_NOT_FOUND
        assert "not a consumer group" in d["message"]
        # A consumer-protocol member cannot join a classic group in use.
        hb = join(c, group, str(uuid.uuid4()), ["t"])
        assert hb["error"] == GROUP_ID_NOT_FOUND, hb
    finally:
        c.close()


def test_bad_heartbeats(bootstrap):
    c = Conn(bootstrap)
    group = unique("cg-bad")
    m = str(uuid.uuid4())
    try:
        hb = heartbeat(c, group, m, 0, topics=["t"], owned={b"\x01" * 16: [0]},
                       rebalance=30000)
        assert hb["error"] == INVALID_REQUEST
        assert hb["message"] == "TopicPartitions must be empty when (re-)joining."
        hb = heartbeat(c, group, m, 0, topics=["t"], owned={})
        assert hb["error"] == INVALID_REQUEST and "RebalanceTimeoutMs" in hb["message"]
        hb = heartbeat(c, "", m, 0, topics=["t"], owned={}, rebalance=30000)
        assert hb["error"] == INVALID_REQUEST
        hb = heartbeat(c, group, m, 0, topics=["t"], owned={}, rebalance=30000,
                       assignor="range")
        assert hb["error"] == UNSUPPORTED_ASSIGNOR
        hb = heartbeat(c, group, m, 0, owned={}, rebalance=30000, regex="a(")
        assert hb["error"] == INVALID_REGULAR_EXPRESSION, hb
    finally:
        c.close()


def settle(c, group, members):
    """Heartbeats each {id: [epoch, owned]} in turn, acknowledging what it
    is given, until a round changes nothing; returns the owned sets."""
    for _ in range(10):
        changed = False
        for mid, st in members.items():
            hb = heartbeat(c, group, mid, st[0], owned=st[1])
            assert hb["error"] == NONE, hb
            if hb["assignment"] is not None and hb["assignment"] != st[1]:
                changed = True
                st[1] = hb["assignment"]
            if hb["epoch"] != st[0]:
                changed = True
                st[0] = hb["epoch"]
            disjoint(*(s[1] for s in members.values()))
        if not changed:
            return {mid: st[1] for mid, st in members.items()}
    raise AssertionError("the group did not settle: %r" % members)


def test_static_member_comes_back(admin, bootstrap):
    topic = unique("cg848-static")
    create_topic(admin, topic, 4)
    group = unique("cg848-static-group")
    c = Conn(bootstrap)
    a, b, a2 = (str(uuid.uuid4()) for _ in range(3))
    try:
        ja = heartbeat(c, group, a, 0, topics=[topic], owned={}, rebalance=30000,
                       instance="i1")
        jb = join(c, group, b, [topic])
        owned = settle(c, group, {a: [ja["epoch"], ja["assignment"]],
                                  b: [jb["epoch"], jb["assignment"]]})
        assert total(owned[a]) == 2 and total(owned[b]) == 2
        epoch = heartbeat(c, group, a, -2, instance="i1")
        assert epoch["error"] == NONE and epoch["epoch"] == -2
        # Gone for now: it keeps its place and its partitions.
        assert len(describe(c, group)["members"]) == 2
        hb = heartbeat(c, group, b, jb["epoch"])
        hb = heartbeat(c, group, b, hb["epoch"])
        assert total(hb["assignment"] or owned[b]) == 2
        # The instance comes back under a new member id: the same partitions.
        back = heartbeat(c, group, a2, 0, topics=[topic], owned={},
                         rebalance=30000, instance="i1")
        assert back["error"] == NONE, back
        assert back["assignment"] == owned[a]
        # While it is in, the instance id is taken.
        dup = heartbeat(c, group, str(uuid.uuid4()), 0, topics=[topic], owned={},
                        rebalance=30000, instance="i1")
        assert dup["error"] == 111, dup  # UNRELEASED_INSTANCE_ID
        old = heartbeat(c, group, a, back["epoch"])
        assert old["error"] == UNKNOWN_MEMBER_ID
        assert sorted(m["id"] for m in describe(c, group)["members"]) == sorted([a2, b])
    finally:
        c.close()


def test_member_that_does_not_revoke_is_fenced(admin, bootstrap):
    topic = unique("cg848-revoke")
    create_topic(admin, topic, 4)
    group = unique("cg848-revoke-group")
    c = Conn(bootstrap)
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        ja = heartbeat(c, group, a, 0, topics=[topic], owned={}, rebalance=1000)
        assert total(ja["assignment"]) == 4
        jb = join(c, group, b, [topic])
        told = heartbeat(c, group, a, ja["epoch"])
        assert total(told["assignment"]) == 2 and told["epoch"] == ja["epoch"]
        # A never reports the two gone: after its rebalance timeout (1 s)
        # it is out, and B gets everything.
        time.sleep(2.0)
        hb = heartbeat(c, group, b, jb["epoch"])
        assert hb["error"] == NONE and hb["epoch"] > jb["epoch"]
        assert total(hb["assignment"]) == 4, hb
        gone = heartbeat(c, group, a, ja["epoch"])
        assert gone["error"] == UNKNOWN_MEMBER_ID
    finally:
        c.close()


def test_regex_and_different_subscriptions(admin, bootstrap):
    prefix = unique("cgre")
    t1, t2 = prefix + "-a", prefix + "-b"
    create_topic(admin, t1, 2)
    create_topic(admin, t2, 2)
    group = unique("cg848-mixed")
    c = Conn(bootstrap)
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        # B subscribes both by pattern and gets all four; A then subscribes
        # t1 only: the only balance is t1 to A and t2 to B.
        # Written as franz-go sends it: a (?:...) group, Java's syntax.
        jb = heartbeat(c, group, b, 0, owned={}, rebalance=30000,
                       regex="(?:%s-\\w)" % prefix)
        assert jb["error"] == NONE and total(jb["assignment"]) == 4, jb
        ja = join(c, group, a, [t1])
        owned = settle(c, group, {b: [jb["epoch"], jb["assignment"]],
                                  a: [ja["epoch"], ja["assignment"]]})
        d = {m["id"]: m for m in describe(c, group)["members"]}
        assert d[a]["assignment"] == {t1: {0, 1}}, d
        assert d[b]["assignment"] == {t2: {0, 1}}, d
        assert d[b]["regex"] is not None and d[b]["topics"] == []
        assert total(owned[a]) == 2 and total(owned[b]) == 2
        # A new topic matching the pattern goes to B without a rejoin.
        t3 = prefix + "-c"
        create_topic(admin, t3, 2)
        hb = heartbeat(c, group, b, d[b]["epoch"])
        hb = heartbeat(c, group, b, hb["epoch"], owned=hb["assignment"] or owned[b])
        d = {m["id"]: m for m in describe(c, group)["members"]}
        assert set(d[b]["target"]) | set(d[a]["target"]) == {t1, t2, t3}, d
    finally:
        c.close()
