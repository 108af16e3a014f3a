"""Bad and unusual input on the wire, sent byte by byte over a raw socket.

What a broker owes a client that speaks a version it does not know, or
sends bytes that do not parse: ApiVersions answers an unknown version with a
v0 body (error 35 and the broker's ranges, KIP-511), a frame over
socket.request.max.bytes or a request that does not parse closes that
connection and nothing else, and the broker keeps serving everyone.
"""
import gzip
import os
import socket
import subprocess
import struct
import threading
import time

import pytest

from samsa_client import create_topic, psql, unique

UNSUPPORTED_VERSION = 35


def connect(bootstrap):
    host, port = bootstrap.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    s.settimeout(10)
    return s


def send_frame(s, payload):
    s.sendall(struct.pack(">i", len(payload)) + payload)


def read_frame(s):
    head = recv_exactly(s, 4)
    (n,) = struct.unpack(">i", head)
    return recv_exactly(s, n)


def recv_exactly(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed after %d of %d bytes" % (len(out), n))
        out += chunk
    return out


def header(key, version, correlation, client=b"samsa-test"):
    return struct.pack(">hhih", key, version, correlation, len(client)) + client


def api_versions_v0(s, correlation):
    send_frame(s, header(18, 0, correlation))
    body = read_frame(s)
    corr, err, n = struct.unpack(">ihi", body[:10])
    ranges = {}
    off = 10
    for _ in range(n):
        key, lo, hi = struct.unpack(">hhh", body[off:off + 6])
        ranges[key] = (lo, hi)
        off += 6
    return corr, err, ranges


def closed_by_peer(s):
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, socket.timeout):
        return True


def test_api_versions_ranges(bootstrap):
    s = connect(bootstrap)
    corr, err, ranges = api_versions_v0(s, 1)
    assert corr == 1 and err == 0
    # Produce is advertised from 0 (librdkafka's feature checks) ...
    assert ranges[0][0] == 0 and ranges[0][1] >= 9
    assert ranges[1][0] <= 4 and ranges[1][1] >= 12
    assert ranges[18] == (0, 4)
    # The consumer group protocol (KIP-848) ...
    assert ranges[68] == (0, 1) and ranges[69] == (0, 0)
    # ... and nothing we do not serve: no share groups (KIP-932).
    assert not {76, 77, 78, 79} & set(ranges)
    s.close()


def test_unknown_api_versions_version_gets_v0_body(bootstrap):
    s = connect(bootstrap)
    # A future ApiVersions v99 with a body we cannot know.
    send_frame(s, header(18, 99, 42) + b"\x00\x01\x02")
    body = read_frame(s)
    corr, err, n = struct.unpack(">ihi", body[:10])
    assert corr == 42
    assert err == UNSUPPORTED_VERSION
    assert n > 5, "the v0 body lists our ranges so the client can retry"
    # The connection still works at a version we serve.
    corr, err, ranges = api_versions_v0(s, 43)
    assert (corr, err) == (43, 0)
    s.close()


def test_produce_v2_is_refused(bootstrap):
    s = connect(bootstrap)
    # Produce v2: acks=1, timeout, one topic, one partition, empty records.
    body = struct.pack(">hii", 1, 1000, 1) + struct.pack(">h", 1) + b"t"
    body += struct.pack(">iii", 1, 0, 0)
    send_frame(s, header(0, 2, 5) + body)
    resp = read_frame(s)
    (corr,) = struct.unpack(">i", resp[:4])
    assert corr == 5
    # topics[1] name "t" partitions[1] index 0 error_code
    off = 4 + 4 + 2 + 1 + 4 + 4
    (err,) = struct.unpack(">h", resp[off:off + 2])
    assert err == UNSUPPORTED_VERSION
    s.close()


@pytest.mark.parametrize("size", [104857600 + 1, 0x7FFFFFFF, -5, 3])
def test_bad_frame_size_closes_only_that_connection(bootstrap, size):
    bad = connect(bootstrap)
    bad.sendall(struct.pack(">i", size) + b"\x00" * 16)
    assert closed_by_peer(bad)
    bad.close()
    good = connect(bootstrap)
    assert api_versions_v0(good, 7)[1] == 0
    good.close()


def test_request_that_does_not_parse_closes_the_connection(bootstrap):
    bad = connect(bootstrap)
    # Metadata v1 whose topic array claims a million entries.
    send_frame(bad, header(3, 1, 9) + struct.pack(">i", 1000000))
    assert closed_by_peer(bad)
    bad.close()
    # A truncated header.
    bad = connect(bootstrap)
    send_frame(bad, b"\x00\x03\x00\x01\x00\x00\x00\x09\x00\x7f")
    assert closed_by_peer(bad)
    bad.close()
    good = connect(bootstrap)
    assert api_versions_v0(good, 8)[1] == 0
    good.close()


def test_unknown_api_key_closes_the_connection(bootstrap):
    bad = connect(bootstrap)
    send_frame(bad, header(9999, 0, 3))
    assert closed_by_peer(bad)
    bad.close()


def test_pipelined_requests_answer_in_order(bootstrap):
    s = connect(bootstrap)
    for corr in range(100, 150):
        send_frame(s, header(18, 0, corr))
    for corr in range(100, 150):
        body = read_frame(s)
        assert struct.unpack(">i", body[:4])[0] == corr
    s.close()


def test_frames_split_and_glued_anyhow(bootstrap):
    """Frames arrive in whatever pieces TCP makes of them: a size split in
    two, a 30 kB frame in slow pieces, frames glued to the start of the
    next.  (samsa reads the rest of a frame itself: libevent alone reads
    4 KiB per call.)"""
    big = lambda corr: header(18, 0, corr, client=b"c" * 30000)
    frame = lambda payload: struct.pack(">i", len(payload)) + payload
    s = connect(bootstrap)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    one = frame(big(1))
    for piece in (one[:2], one[2:7], one[7:5000], one[5000:20000], one[20000:]):
        s.sendall(piece)
        time.sleep(0.05)
    glued = frame(big(2)) + frame(header(18, 0, 3)) + frame(big(4))
    cut = len(glued) - 12345
    s.sendall(glued[:cut])
    time.sleep(0.05)
    s.sendall(glued[cut:])
    for corr in (1, 2, 3, 4):
        body = read_frame(s)
        got, err = struct.unpack(">ih", body[:6])
        assert (got, err) == (corr, 0)
    s.close()


# --- Produce: record batches Kafka refuses --------------------------------

def _crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def _varint(n):
    n = (n << 1) ^ (n >> 63)  # zigzag
    out = b""
    while True:
        if n < 0x80:
            return out + bytes([n])
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7


def _batch(values, count=None, ts=None, max_ts=None, producer=(-1, -1, -1),
           codec=0, compress=None):
    """A v2 record batch of the values, claiming count records, all at ts
    (now), the header claiming max_ts (ts); producer: (id, epoch, base
    sequence); codec: the attribute bits, compress: what makes the records'
    bytes into that codec's."""
    recs = b""
    for i, v in enumerate(values):
        body = b"\x00" + _varint(0) + _varint(i) + _varint(-1) + _varint(len(v)) + v + _varint(0)
        recs += _varint(len(body)) + body
    if compress:
        recs = compress(recs)
    count = len(values) if count is None else count
    ts = int(time.time() * 1000) if ts is None else ts
    max_ts = ts if max_ts is None else max_ts
    pid, epoch, seq = producer
    after_crc = struct.pack(">hiqqqhii", codec, count - 1, ts, max_ts, pid, epoch, seq,
                            count) + recs
    crc = _crc32c(after_crc)
    return struct.pack(">qiibI", 0, 4 + 1 + 4 + len(after_crc), -1, 2, crc) + after_crc


def _produce_v3(s, topic, records, correlation, partition=0):
    """Produce v3 acks=1 of records to one partition; its error and offset."""
    t = topic.encode()
    body = struct.pack(">hhi", -1, 1, 10000) + struct.pack(">ih", 1, len(t)) + t
    body += struct.pack(">iii", 1, partition, len(records)) + records
    send_frame(s, header(0, 3, correlation) + body)
    resp = read_frame(s)
    (corr,) = struct.unpack(">i", resp[:4])
    assert corr == correlation
    off = 4 + 4 + 2 + len(t) + 4 + 4
    return struct.unpack(">hq", resp[off:off + 10])


def test_produce_batches_kafka_refuses(bootstrap, admin):
    topic = unique("refused-batches")
    create_topic(admin, topic, 1)
    s = connect(bootstrap)
    assert _produce_v3(s, topic, _batch([b"one"]), 1) == (0, 0)
    # Two batches for one partition in one request (Kafka: v3 and above
    # take exactly one): INVALID_RECORD, nothing stored.
    err, _ = _produce_v3(s, topic, _batch([b"a"]) + _batch([b"b"]), 2)
    assert err == 87
    # A batch of no records claims no offset: INVALID_RECORD, which
    # clients do not retry (CORRUPT_MESSAGE, 2, they would).
    err, _ = _produce_v3(s, topic, _batch([], count=0), 3)
    assert err == 87
    # Records that do not parse under a CRC that matches: 2 claimed as 3.
    err, _ = _produce_v3(s, topic, _batch([b"x", b"y"], count=3), 4)
    assert err == 87
    # The partition numbers on from where it was.
    assert _produce_v3(s, topic, _batch([b"two"]), 5) == (0, 1)
    s.close()


# --- Fetch: limits and long polls -----------------------------------------

def _in_half_a_second(fn):
    """Runs fn on a thread of its own after 0.5 s; join the thread."""
    def later():
        time.sleep(0.5)
        fn()
    th = threading.Thread(target=later)
    th.start()
    return th


def _fetch_v4(s, topic, parts, correlation, max_wait=0, min_bytes=0,
              max_bytes=50 << 20, part_max=1 << 20):
    """Fetch v4 of partitions {index: offset}; {index: (error, hw, bytes)}."""
    t = topic.encode()
    body = struct.pack(">iiiib", -1, max_wait, min_bytes, max_bytes, 0)
    body += struct.pack(">ih", 1, len(t)) + t + struct.pack(">i", len(parts))
    for index, offset in parts.items():
        body += struct.pack(">iqi", index, offset, part_max)
    send_frame(s, header(1, 4, correlation) + body)
    resp = read_frame(s)
    corr, _throttle, ntopics = struct.unpack(">iii", resp[:12])
    assert corr == correlation and ntopics == 1
    off = 12
    (nlen,) = struct.unpack(">h", resp[off:off + 2])
    off += 2 + nlen
    (nparts,) = struct.unpack(">i", resp[off:off + 4])
    off += 4
    out = {}
    for _ in range(nparts):
        index, err, hw, _lso, naborted = struct.unpack(">ihqqi", resp[off:off + 26])
        off += 26 + max(naborted, 0) * 16
        (rlen,) = struct.unpack(">i", resp[off:off + 4])
        off += 4
        out[index] = (err, hw, resp[off:off + max(rlen, 0)])
        off += max(rlen, 0)
    return out


def _batches(records):
    """Base offsets of the whole batches in records."""
    out, off = [], 0
    while off + 12 <= len(records):
        base, length = struct.unpack(">qi", records[off:off + 12])
        if off + 12 + length > len(records):
            break
        out.append(base)
        off += 12 + length
    return out


def test_fetch_max_bytes_bounds_the_answer(bootstrap, admin):
    topic = unique("fetch-max-bytes")
    create_topic(admin, topic, 2)
    s = connect(bootstrap)
    for p in (0, 1):
        for i in range(5):
            _produce_v3(s, topic, _batch([b"v" * 10000]), 10 + i, partition=p)
    size = len(_batch([b"v" * 10000]))
    # Room for one batch and a half: partition 0 gets one, partition 1,
    # whose first batch would go over, none.
    got = _fetch_v4(s, topic, {0: 0, 1: 0}, 20, max_bytes=size * 3 // 2)
    assert _batches(got[0][2]) == [0]
    assert got[1][0] == 0 and _batches(got[1][2]) == []
    # A limit below one batch still gives the first partition one whole
    # batch, so that a consumer always moves on.
    got = _fetch_v4(s, topic, {0: 2, 1: 0}, 21, max_bytes=100)
    assert _batches(got[0][2]) == [2]
    assert _batches(got[1][2]) == []
    # Room for everything: all five of each.
    got = _fetch_v4(s, topic, {0: 0, 1: 0}, 22)
    assert _batches(got[0][2]) == [0, 1, 2, 3, 4]
    assert _batches(got[1][2]) == [0, 1, 2, 3, 4]
    s.close()


def test_fetch_waits_for_min_bytes_through_small_appends(bootstrap, admin):
    topic = unique("fetch-min-bytes")
    create_topic(admin, topic, 1)
    s = connect(bootstrap)
    _produce_v3(s, topic, _batch([b"first"]), 1)

    def small_append():
        p = connect(bootstrap)
        _produce_v3(p, topic, _batch([b"small"]), 2)
        p.close()

    th = _in_half_a_second(small_append)
    t0 = time.monotonic()
    # 100 kB wanted, 3 s at most: the small append at 0.5 s is not enough.
    got = _fetch_v4(s, topic, {0: 1}, 3, max_wait=3000, min_bytes=100000)
    waited = time.monotonic() - t0
    th.join()
    assert got[0][0] == 0 and _batches(got[0][2]) == [1]
    assert waited >= 2.5, "answered after %.2f s, before max_wait_ms" % waited
    s.close()


def test_fetch_answers_once_small_appends_reach_min_bytes(bootstrap, admin):
    """A parked fetch counts what each append brings (without copying it
    all again) and answers once min_bytes is there, with every batch of
    both partitions, well before max_wait_ms."""
    topic = unique("fetch-min-reached")
    create_topic(admin, topic, 2)
    s = connect(bootstrap)

    def appends():
        p = connect(bootstrap)
        for i in range(8):
            _produce_v3(p, topic, _batch([b"v" * 1000]), 10 + i, partition=i % 2)
            time.sleep(0.1)
        p.close()

    th = _in_half_a_second(appends)
    t0 = time.monotonic()
    # ~1 kB per append: the fourth reaches 4,000 bytes
    got = _fetch_v4(s, topic, {0: 0, 1: 0}, 5, max_wait=20000, min_bytes=4000)
    waited = time.monotonic() - t0
    th.join()
    n = len(_batches(got[0][2])) + len(_batches(got[1][2]))
    assert 4 <= n <= 8, n
    assert _batches(got[0][2]) == list(range(len(_batches(got[0][2]))))
    assert waited < 10, "answered after %.2f s" % waited
    s.close()


def test_produce_is_refused_while_too_much_waits_for_postgres(bootstrap, admin):
    """While Postgres holds the flush (a lock on the partition's row), samsa
    queues at most 256 MiB for the next flush and refuses the rest with
    KAFKA_STORAGE_ERROR (retriable) instead of holding every request in
    memory; once the lock goes, what was accepted is written, and only
    that."""
    topic = unique("queue-cap")
    create_topic(admin, topic, 1)
    tid = psql("SELECT tid FROM samsa.topics WHERE name = '%s'" % topic)
    hold = subprocess.Popen(
        ["psql", "-X", "-q", "-d", os.environ["SAMSA_PG_CONNINFO"], "-c",
         "BEGIN; SELECT 1 FROM samsa.partitions WHERE tid = %s FOR UPDATE; "
         "SELECT pg_sleep(120); COMMIT;" % tid],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while psql("SELECT count(*) FROM pg_stat_activity WHERE "
                   "query LIKE '%%pg_sleep(120)%%' AND pid <> pg_backend_pid()") != "1":
            assert time.monotonic() < deadline, "the lock was not taken"
            time.sleep(0.1)
        batch = _batch([b"q" * 1000000])
        conns = [connect(bootstrap) for _ in range(3)]
        per = 130  # 3 x 130 MB: past the 64 MiB in flight plus 256 MiB queued
        for i in range(per):
            for c in conns:
                t = topic.encode()
                body = struct.pack(">hhi", -1, 1, 60000) + struct.pack(">ih", 1, len(t)) + t
                body += struct.pack(">iii", 1, 0, len(batch)) + batch
                send_frame(c, header(0, 3, i) + body)
    finally:
        time.sleep(1)
        hold.kill()
        hold.wait()
        psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
             "query LIKE '%%pg_sleep(120)%%' AND pid <> pg_backend_pid()")
    errors = {}
    for c in conns:
        c.settimeout(120)
        for i in range(per):
            resp = read_frame(c)
            assert struct.unpack(">i", resp[:4])[0] == i
            off = 4 + 4 + 2 + len(topic) + 4 + 4
            err, _ = struct.unpack(">hq", resp[off:off + 10])
            errors[err] = errors.get(err, 0) + 1
        c.close()
    assert set(errors) == {0, 56}, errors
    assert errors[56] >= 20, errors
    got = _fetch_v4(connect(bootstrap), topic, {0: 0}, 1, max_bytes=1, part_max=1)
    assert got[0][1] == errors[0], (got[0][1], errors)


def _produce_entries(s, topic, entries, correlation, version=3):
    """Produce (acks=1) of [(partition, records)] in one request; the
    errors, in order."""
    t = topic.encode()
    body = struct.pack(">hhi", -1, 1, 30000) + struct.pack(">ih", 1, len(t)) + t
    body += struct.pack(">i", len(entries))
    for partition, records in entries:
        body += struct.pack(">ii", partition, len(records)) + records
    send_frame(s, header(0, version, correlation) + body)
    r = read_frame(s)
    assert struct.unpack(">i", r[:4])[0] == correlation
    off = 4 + 4 + 2 + len(t)
    (n,) = struct.unpack(">i", r[off:off + 4])
    off += 4
    out = []
    for _ in range(n):
        _index, err = struct.unpack(">ih", r[off:off + 6])
        out.append(err)
        off += 4 + 2 + 8 + 8 + (8 if version >= 5 else 0)
    return out


def test_produce_refuses_what_kafka_refuses(bootstrap, admin):
    """As Kafka's handling of Produce: no records is INVALID_RECORD (not
    the retriable CORRUPT_MESSAGE), zstd before v7 is
    UNSUPPORTED_COMPRESSION_TYPE, a producer id with a negative sequence
    is INVALID_RECORD, a record timestamp more than
    message.timestamp.after.max.ms (1 hour) ahead is INVALID_TIMESTAMP, a
    partition named twice in one request is refused (it was appended
    twice), and a header whose MaxTimestamp lies is corrected from the
    records."""
    topic = unique("produce-refusals")
    create_topic(admin, topic, 2)
    s = connect(bootstrap)
    now = int(time.time() * 1000)
    assert _produce_entries(s, topic, [(0, b"")], 1) == [87]
    assert _produce_entries(s, topic, [(0, _batch([b"z"], codec=4))], 2) == [76]
    assert _produce_entries(s, topic, [(0, _batch([b"p"], producer=(5, 0, -1)))], 3) == [87]
    future = now + 10 * 24 * 3600 * 1000
    assert _produce_entries(s, topic, [(0, _batch([b"f"], ts=future))], 4) == [32]
    assert _produce_entries(s, topic, [(1, _batch([b"a"])), (1, _batch([b"b"]))], 5) == [42, 42]
    year_2100 = 4102444800000
    assert _produce_entries(s, topic, [(0, _batch([b"lie"], ts=now, max_ts=year_2100))], 6) == [0]
    got = _fetch_v4(s, topic, {0: 0, 1: 0}, 7)
    assert got[1][1] == 0, "the repeated partition was appended"
    records = got[0][2]
    assert got[0][1] == 1 and len(_batches(records)) == 1
    (max_ts,) = struct.unpack(">q", records[35:43])
    assert max_ts == now, "MaxTimestamp %d, the records say %d" % (max_ts, now)
    assert _crc32c(records[21:]) == struct.unpack(">I", records[17:21])[0]
    s.close()


def test_compressed_batches_share_one_budget_per_request(bootstrap, admin):
    """A request's batches decompress to at most 256 MiB together: eight
    gzip batches of 40 kB that each hold a 40 MB record (a bomb repeated,
    or a huge legitimate request) are taken while they fit and refused as
    MESSAGE_TOO_LARGE after that, instead of holding the loop for each."""
    topic = unique("inflate-budget")
    create_topic(admin, topic, 8)
    s = connect(bootstrap)
    big = _batch([bytes(40 << 20)], codec=1, compress=gzip.compress)
    assert len(big) < 100000
    errors = _produce_entries(s, topic, [(p, big) for p in range(8)], 1)
    assert errors == [0] * 6 + [10, 10], errors
    s.close()


def test_a_fetch_holds_the_requests_behind_it(bootstrap, admin):
    """As Kafka, which reads a connection's next request once it has
    answered the last: a produce pipelined behind a long-polling fetch on
    the same connection waits for the fetch (so pipelined fetches cannot
    each hold an answer in memory), the fetch waits its 2 s and finds
    nothing, and then the produce is taken."""
    topic = unique("fetch-holds")
    create_topic(admin, topic, 1)
    s = connect(bootstrap)
    t = topic.encode()
    body = struct.pack(">iiiib", -1, 2000, 1, 1 << 20, 0)
    body += struct.pack(">ih", 1, len(t)) + t + struct.pack(">i", 1)
    body += struct.pack(">iqi", 0, 0, 1 << 20)
    t0 = time.monotonic()
    send_frame(s, header(1, 4, 1) + body)
    records = _batch([b"behind"])
    body = struct.pack(">hhi", -1, 1, 10000) + struct.pack(">ih", 1, len(t)) + t
    body += struct.pack(">iii", 1, 0, len(records)) + records
    send_frame(s, header(0, 3, 2) + body)
    fetched = read_frame(s)
    waited = time.monotonic() - t0
    assert struct.unpack(">i", fetched[:4])[0] == 1
    assert waited >= 1.8, "the fetch was woken by the produce behind it"
    produced = read_frame(s)
    assert struct.unpack(">i", produced[:4])[0] == 2
    off = 4 + 4 + 2 + len(t) + 4 + 4
    assert struct.unpack(">hq", produced[off:off + 10]) == (0, 0)
    s.close()


def test_fetch_waiting_on_a_deleted_topic_says_so(bootstrap, admin):
    topic = unique("fetch-deleted")
    create_topic(admin, topic, 1)
    s = connect(bootstrap)
    _produce_v3(s, topic, _batch([b"only"]), 1)

    th = _in_half_a_second(
        lambda: admin.delete_topics([topic])[topic].result(30))
    got = _fetch_v4(s, topic, {0: 1}, 4, max_wait=10000, min_bytes=1)
    th.join()
    assert got[0][0] == 3, "error %d, not UNKNOWN_TOPIC_OR_PARTITION" % got[0][0]
    s.close()
