"""Issue 3 on the wire: the old, non-flexible group API versions that older
librdkafka and other clients still send (the clients in the other tests use
newer ones), spoken with a minimal hand-written Kafka client.

- FindCoordinator v0 names the advertised address.
- JoinGroup v1 from two members at once: both answers held until both
  joined, the leader gets both members' metadata, the follower none.
- SyncGroup v0: the follower, assigned nothing by the leader, gets empty
  bytes (length 0, not null); the leader gets its bytes unchanged.
- Heartbeat v0: ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID.
- OffsetCommit v2 / OffsetFetch v1: metadata comes back unchanged, a null
  metadata as "", an uncommitted partition as -1.
- JoinGroup v4 without a member id: MEMBER_ID_REQUIRED with the id to use,
  UNKNOWN_MEMBER_ID for an id it did not hand out.
- LeaveGroup v0, DescribeGroups v0, ListGroups v0, DeleteGroups v0
  (NON_EMPTY_GROUP while members remain).
"""

import socket
import struct
import threading
import time

from samsa_client import create_topic, unique

NONE = 0
ILLEGAL_GENERATION = 22
UNKNOWN_MEMBER_ID = 25
REBALANCE_IN_PROGRESS = 27
NON_EMPTY_GROUP = 68
GROUP_ID_NOT_FOUND = 69
MEMBER_ID_REQUIRED = 79
INVALID_GROUP_ID = 24


def s16(v):
    return struct.pack(">h", v)


def s32(v):
    return struct.pack(">i", v)


def s64(v):
    return struct.pack(">q", v)


def string(v):
    if v is None:
        return s16(-1)
    b = v.encode() if isinstance(v, str) else v
    return s16(len(b)) + b


def bytes_(v):
    if v is None:
        return s32(-1)
    return s32(len(v)) + v


def array(items):
    return s32(len(items)) + b"".join(items)


class Reader:
    def __init__(self, b):
        self.b, self.i = b, 0

    def take(self, n):
        v = self.b[self.i:self.i + n]
        assert len(v) == n, "response too short"
        self.i += n
        return v

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def bytes(self):
        n = self.i32()
        return None if n < 0 else self.take(n)

    def array(self, f):
        n = self.i32()
        return None if n < 0 else [f() for _ in range(n)]

    def done(self):
        assert self.i == len(self.b), "%d bytes left over" % (len(self.b) - self.i)


class Conn:
    def __init__(self, bootstrap, client_id="wire"):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=60)
        self.client_id = client_id
        self.corr = 0

    def send(self, key, version, body):
        self.corr += 1
        msg = s16(key) + s16(version) + s32(self.corr) + string(self.client_id) + body
        self.sock.sendall(s32(len(msg)) + msg)
        return self.corr

    def recv(self, corr):
        n = struct.unpack(">i", self._read(4))[0]
        r = Reader(self._read(n))
        assert r.i32() == corr
        return r

    def call(self, key, version, body):
        return self.recv(self.send(key, version, body))

    def _read(self, n):
        b = b""
        while len(b) < n:
            c = self.sock.recv(n - len(b))
            assert c, "connection closed"
            b += c
        return b

    def close(self):
        self.sock.close()


def join_v1(c, group, member, meta, session=10000, rebalance=10000):
    return c.send(11, 1, string(group) + s32(session) + s32(rebalance) + string(member)
                  + string("consumer") + array([string("range") + bytes_(meta)]))


def read_join_v1(r):
    out = {"error": r.i16(), "generation": r.i32(), "protocol": r.string(),
           "leader": r.string(), "member": r.string(),
           "members": r.array(lambda: (r.string(), r.bytes()))}
    r.done()
    return out


def sync_v0(c, group, gen, member, assignments):
    r = c.call(14, 0, string(group) + s32(gen) + string(member)
               + array([string(m) + bytes_(a) for m, a in assignments]))
    out = (r.i16(), r.bytes())
    r.done()
    return out


def heartbeat_v0(c, group, gen, member):
    r = c.call(12, 0, string(group) + s32(gen) + string(member))
    e = r.i16()
    r.done()
    return e


def test_old_versions_on_the_wire(bootstrap, admin):
    topic = unique("wire-group")
    group = unique("wire-g")
    create_topic(admin, topic, 2)

    a = Conn(bootstrap, "wire-a")
    b = Conn(bootstrap, "wire-b")
    try:
        # FindCoordinator v0: the advertised address.
        r = a.call(10, 0, string(group))
        err, node, host, port = r.i16(), r.i32(), r.string(), r.i32()
        r.done()
        assert err == NONE and node >= 0
        assert "%s:%d" % (host, port) == bootstrap

        # Two members join at once (v1: no MEMBER_ID_REQUIRED).
        ca = join_v1(a, group, "", b"meta-a")
        cb = join_v1(b, group, "", b"\x00meta-b\xff")
        ja = read_join_v1(a.recv(ca))
        jb = read_join_v1(b.recv(cb))
        assert ja["error"] == NONE and jb["error"] == NONE, (ja, jb)
        assert ja["generation"] == jb["generation"] >= 1
        assert ja["protocol"] == jb["protocol"] == "range"
        assert ja["leader"] == jb["leader"]
        leader, follower = (ja, jb) if ja["leader"] == ja["member"] else (jb, ja)
        lc, fc = (a, b) if leader is ja else (b, a)
        assert dict(leader["members"]) == {ja["member"]: b"meta-a",
                                           jb["member"]: b"\x00meta-b\xff"}
        assert follower["members"] == []
        gen = leader["generation"]

        # SyncGroup v0: the follower is assigned nothing and must get empty
        # bytes, not null.  It asks first and waits for the leader.
        fcorr = fc.send(14, 0, string(group) + s32(gen) + string(follower["member"])
                        + array([]))
        assignment = b"\x00\x01leader-gets-it\x00"
        e, got = sync_v0(lc, group, gen, leader["member"], [(leader["member"], assignment)])
        assert (e, got) == (NONE, assignment)
        r = fc.recv(fcorr)
        e, got = r.i16(), r.bytes()
        r.done()
        assert e == NONE and got == b"", (e, got)

        # Heartbeat v0.
        assert heartbeat_v0(a, group, gen, ja["member"]) == NONE
        assert heartbeat_v0(a, group, gen + 7, ja["member"]) == ILLEGAL_GENERATION
        assert heartbeat_v0(a, group, gen, "nobody") == UNKNOWN_MEMBER_ID

        # OffsetCommit v2 with metadata, null metadata; OffsetFetch v1.
        md = "héllo, wörld \x01"
        r = lc.call(8, 2, string(group) + s32(gen) + string(leader["member"]) + s64(-1)
                    + array([string(topic) + array([
                        s32(0) + s64(17) + string(md),
                        s32(1) + s64(3) + string(None)])]))
        res = r.array(lambda: (r.string(), r.array(lambda: (r.i32(), r.i16()))))
        r.done()
        assert res == [(topic, [(0, NONE), (1, NONE)])]
        r = a.call(8, 2, string(group) + s32(gen + 1) + string(leader["member"]) + s64(-1)
                   + array([string(topic) + array([s32(0) + s64(99) + string("")])]))
        res = r.array(lambda: (r.string(), r.array(lambda: (r.i32(), r.i16()))))
        assert res == [(topic, [(0, ILLEGAL_GENERATION)])]

        r = a.call(9, 1, string(group) + array([string(topic) + array([s32(0), s32(1)])]))
        res = r.array(lambda: (r.string(), r.array(
            lambda: (r.i32(), r.i64(), r.string(), r.i16()))))
        r.done()
        assert res == [(topic, [(0, 17, md, NONE), (1, 3, "", NONE)])], res
        r = a.call(9, 1, string(unique("no-such-group")) + array(
            [string(topic) + array([s32(0)])]))
        res = r.array(lambda: (r.string(), r.array(
            lambda: (r.i32(), r.i64(), r.string(), r.i16()))))
        assert res == [(topic, [(0, -1, "", NONE)])], res

        # DescribeGroups v0 while Stable: members with their assignment.
        r = a.call(15, 0, array([string(group)]))
        groups = r.array(lambda: (r.i16(), r.string(), r.string(), r.string(), r.string(),
                                  r.array(lambda: (r.string(), r.string(), r.string(),
                                                   r.bytes(), r.bytes()))))
        r.done()
        (err, gid, state, ptype, proto, members), = groups
        assert (err, gid, ptype, proto) == (NONE, group, "consumer", "range")
        assert state in ("Stable", "PreparingRebalance"), state
        # ListGroups v0 lists it; DeleteGroups refuses while it has members.
        r = a.call(16, 0, b"")
        err = r.i16()
        listed = r.array(lambda: (r.string(), r.string()))
        assert err == NONE and (group, "consumer") in listed
        r = a.call(42, 0, array([string(group)]))
        r.i32()
        assert r.array(lambda: (r.string(), r.i16())) == [(group, NON_EMPTY_GROUP)]

        # LeaveGroup v0 for both: the group empties and can be deleted.
        for conn, m in ((a, ja["member"]), (b, jb["member"])):
            r = conn.call(13, 0, string(group) + string(m))
            assert r.i16() == NONE
            r.done()
        r = a.call(13, 0, string(group) + string(ja["member"]))
        assert r.i16() == UNKNOWN_MEMBER_ID
        r = a.call(42, 0, array([string(group)]))
        r.i32()
        assert r.array(lambda: (r.string(), r.i16())) == [(group, NONE)]
        r = a.call(42, 0, array([string(group)]))
        r.i32()
        assert r.array(lambda: (r.string(), r.i16())) == [(group, GROUP_ID_NOT_FOUND)]
        r = a.call(9, 1, string(group) + array([string(topic) + array([s32(0)])]))
        res = r.array(lambda: (r.string(), r.array(
            lambda: (r.i32(), r.i64(), r.string(), r.i16()))))
        assert res == [(topic, [(0, -1, "", NONE)])], "offsets outlived the group"
    finally:
        a.close()
        b.close()


def test_member_id_required_v4(bootstrap):
    group = unique("wire-v4")
    c = Conn(bootstrap, "wire-v4")
    try:
        def join(member):
            return c.call(11, 4, string(group) + s32(10000) + s32(10000)
                          + string(member) + string("consumer")
                          + array([string("range") + bytes_(b"m")]))

        r = join("")
        throttle, e, gen, proto, leader, member = (r.i32(), r.i16(), r.i32(), r.string(),
                                                   r.string(), r.string())
        r.array(lambda: (r.string(), r.bytes()))
        r.done()
        assert e == MEMBER_ID_REQUIRED and member.startswith("wire-v4-"), (e, member)
        r = join("made-up-id")
        r.i32()
        assert r.i16() == UNKNOWN_MEMBER_ID
        r = join(member)
        r.i32()
        e, gen, proto, leader, got = r.i16(), r.i32(), r.string(), r.string(), r.string()
        members = r.array(lambda: (r.string(), r.bytes()))
        assert (e, proto, leader, got) == (NONE, "range", member, member)
        assert members == [(member, b"m")]
        r = c.call(13, 0, string(group) + string(member))
        assert r.i16() == NONE
    finally:
        c.close()


def test_held_join_answered_after_its_member_left(bootstrap):
    """A member whose JoinGroup waits for a rebalance leaves (LeaveGroup on
    another connection): its held join is answered with its own member id.
    The answer pointed into the freed member (ASan: heap-use-after-free in
    the reply; otherwise freed bytes sent to the client)."""
    group = unique("wire-held")
    a, b, c = (Conn(bootstrap, n) for n in ("wire-held-a", "wire-held-b", "wire-held-c"))
    try:
        ja = read_join_v1(a.recv(join_v1(a, group, "", b"a")))
        assert ja["error"] == NONE
        assert sync_v0(a, group, ja["generation"], ja["member"],
                       [(ja["member"], b"x")])[0] == NONE

        def join_v4(member):
            return b.send(11, 4, string(group) + s32(10000) + s32(10000) + string(member)
                          + string("consumer") + array([string("range") + bytes_(b"b")]))

        r = b.recv(join_v4(""))
        r.i32()
        assert r.i16() == MEMBER_ID_REQUIRED
        r.i32(), r.string(), r.string()
        member = r.string()
        held = join_v4(member)  # waits for a to rejoin
        r = c.call(13, 0, string(group) + string(member))
        assert r.i16() == NONE
        r = b.recv(held)
        r.i32()
        e, gen, proto, leader, got = r.i16(), r.i32(), r.string(), r.string(), r.string()
        assert e == UNKNOWN_MEMBER_ID and got == member, (e, got)
    finally:
        for conn in (a, b, c):
            conn.close()


def test_client_id_that_is_not_utf8(bootstrap):
    """A client id of raw bytes (librdkafka and Sarama send what they are
    given) names the member as Kafka's Java decoding would read it; it
    went into Postgres as it was, every generation's save failed, and the
    group rebalanced for ever (SyncGroup: COORDINATOR_NOT_AVAILABLE).  A
    group id Postgres cannot store is INVALID_GROUP_ID."""
    group = unique("wire-bytes")
    c = Conn(bootstrap, b"caf\xe9\x00")
    try:
        j = read_join_v1(c.recv(join_v1(c, group, "", b"m")))
        assert j["error"] == NONE and j["member"].startswith("caf\ufffd\ufffd-"), j
        e, _ = sync_v0(c, group, j["generation"], j["member"], [(j["member"], b"a")])
        assert e == NONE
        assert heartbeat_v0(c, group, j["generation"], j["member"]) == NONE
        j = read_join_v1(c.recv(join_v1(c, b"g\xff", "", b"m")))
        assert j["error"] == INVALID_GROUP_ID, j
    finally:
        c.close()


def join_pair(a, b, group):
    """a and b join group at once (v1, session 30 s, rebalance timeout 2 s):
    (leader's join, follower's join, leader's conn, follower's conn)"""
    ca = join_v1(a, group, "", b"a", session=30000, rebalance=2000)
    cb = join_v1(b, group, "", b"b", session=30000, rebalance=2000)
    ja, jb = read_join_v1(a.recv(ca)), read_join_v1(b.recv(cb))
    if ja["leader"] == ja["member"]:
        return ja, jb, a, b
    return jb, ja, b, a


def test_leader_that_never_syncs_is_expired(bootstrap):
    """A leader that joins and then never sends SyncGroup (its assignor
    failed) while it keeps its session: after the rebalance timeout it is
    out and the group rebalances (Kafka's pending-sync expiry); the
    follower waiting in SyncGroup was held until the leader's session
    ended, here 30 s."""
    group = unique("wire-nosync")
    a, b = Conn(bootstrap, "wire-nosync-a"), Conn(bootstrap, "wire-nosync-b")
    try:
        leader, follower, lc, fc = join_pair(a, b, group)
        assert follower["error"] == NONE and leader["error"] == NONE
        fc.sock.settimeout(15)  # the rebalance timeout is 2 s
        e, _ = sync_v0(fc, group, follower["generation"], follower["member"], [])
        assert e == REBALANCE_IN_PROGRESS, e
        assert heartbeat_v0(lc, group, leader["generation"], leader["member"]) == \
            UNKNOWN_MEMBER_ID
    finally:
        a.close()
        b.close()


def test_follower_that_never_syncs_is_expired(bootstrap):
    """The leader syncs, the follower only heartbeats: after the rebalance
    timeout the follower is out and the group rebalances (as Kafka's
    pending-sync expiry, which goes on once the group is Stable); it kept
    its place holding nothing for as long as it heartbeated."""
    group = unique("wire-nosync-f")
    a, b = Conn(bootstrap, "wire-nosync-fa"), Conn(bootstrap, "wire-nosync-fb")
    try:
        leader, follower, lc, fc = join_pair(a, b, group)
        gen = leader["generation"]
        e, _ = sync_v0(lc, group, gen, leader["member"],
                       [(leader["member"], b"x"), (follower["member"], b"y")])
        assert e == NONE
        time.sleep(3)
        assert heartbeat_v0(fc, group, gen, follower["member"]) == UNKNOWN_MEMBER_ID
        assert heartbeat_v0(lc, group, gen, leader["member"]) == REBALANCE_IN_PROGRESS
    finally:
        a.close()
        b.close()
