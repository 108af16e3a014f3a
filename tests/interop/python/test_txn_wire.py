"""The transaction coordinator on the wire: fencing as Kafka's
TransactionCoordinator does it, and the error codes each request version
knows, byte by byte over a raw socket.
"""
import struct

from test_protocol import connect, read_frame, send_frame
from samsa_client import unique

NONE = 0
INVALID_PRODUCER_EPOCH = 47
PRODUCER_FENCED = 90


def uvarint(n):
    out = b""
    while n >= 0x80:
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return out + bytes([n])


def compact(b):
    return uvarint(0) if b is None else uvarint(len(b) + 1) + b


def s16(b):
    return struct.pack(">h", len(b)) + b


def request(key, version, correlation, body, flexible):
    head = struct.pack(">hhi", key, version, correlation) + s16(b"txn-wire")
    return head + (b"\x00" if flexible else b"") + body


def init_producer_id_v4(s, tid, pid=-1, epoch=-1, correlation=1):
    """(error, producer id, epoch)"""
    body = compact(tid.encode()) + struct.pack(">iqh", 60000, pid, epoch) + b"\x00"
    send_frame(s, request(22, 4, correlation, body, True))
    r = read_frame(s)
    assert struct.unpack_from(">i", r)[0] == correlation
    return struct.unpack_from(">hqh", r, 4 + 1 + 4)


def add_offsets(s, version, tid, pid, epoch, group, correlation):
    """AddOffsetsToTxn v1 (classic) or v3 (flexible): its error code"""
    if version >= 3:
        body = (compact(tid.encode()) + struct.pack(">qh", pid, epoch) +
                compact(group.encode()) + b"\x00")
    else:
        body = s16(tid.encode()) + struct.pack(">qh", pid, epoch) + s16(group.encode())
    send_frame(s, request(25, version, correlation, body, version >= 3))
    r = read_frame(s)
    assert struct.unpack_from(">i", r)[0] == correlation
    return struct.unpack_from(">h", r, 4 + (1 if version >= 3 else 0) + 4)[0]


def test_a_new_producer_fences_the_old_ones_retried_bump(bootstrap):
    """A zombie's own epoch bump (its id and old epoch), sent after a new
    instance's InitProducerId, is fenced: it was taken for a retry of the
    new instance's bump and got the new epoch, so both held it."""
    tid = unique("txn-zombie")
    a, b = connect(bootstrap), connect(bootstrap)
    err, pid, epoch = init_producer_id_v4(a, tid)
    assert err == NONE
    err, pid2, epoch2 = init_producer_id_v4(b, tid)
    assert (err, pid2, epoch2) == (NONE, pid, epoch + 1)
    assert init_producer_id_v4(a, tid, pid, epoch, 2) == (PRODUCER_FENCED, -1, -1)
    # Versions before 2 know no PRODUCER_FENCED: INVALID_PRODUCER_EPOCH.
    group = unique("txn-zombie-g")
    assert add_offsets(a, 1, tid, pid, epoch, group, 3) == INVALID_PRODUCER_EPOCH
    assert add_offsets(a, 3, tid, pid, epoch, group, 4) == PRODUCER_FENCED
    # The bump the new producer asked for may be retried for its answer.
    err, pid3, epoch3 = init_producer_id_v4(b, tid, pid2, epoch2, 2)
    assert (err, pid3) == (NONE, pid) and epoch3 == epoch2 + 1
    assert init_producer_id_v4(b, tid, pid2, epoch2, 3) == (NONE, pid3, epoch3)
