"""The transactional producers and the check of tests/interop/txn_restart.sh
(issue 4: samsa restarted while a transaction is open).

    python txn_restart_tool.py commit TOPIC TXN_ID PREFIX
        A transactional producer (transaction.timeout.ms 60 s) writes
        PREFIX-<partition>-<i> (PER_PARTITION records to every partition of
        TOPIC) in one transaction and commits it.

    python txn_restart_tool.py open TOPIC TXN_ID PREFIX TIMEOUT_MS
        The same with transaction.timeout.ms TIMEOUT_MS, but the transaction
        is left open: its records are flushed (acknowledged, so in the log)
        and the process ends at once (os._exit, as a crash would), without
        ending the transaction or closing the producer.

    python txn_restart_tool.py init-at-once TXN_ID
        Waits for samsa to listen (trying every 5 ms, up to 60 s) and at
        once sends InitProducerId for TXN_ID (raw, v1), again while it is
        told CONCURRENT_TRANSACTIONS (up to 30 s); fails on any other error.

    python txn_restart_tool.py check TOPIC SECONDS VISIBLE_PREFIX... -- HIDDEN_PREFIX...
        Within SECONDS, a read_committed consumer reading every partition
        from the beginning must reach the high watermark of each (the LSO
        is not stuck behind an open transaction) having seen every record
        of each VISIBLE_PREFIX exactly once and none of any HIDDEN_PREFIX;
        and a read_uncommitted consumer must see the HIDDEN_PREFIX records
        (they were in the log: what read_committed hid was aborted, not
        lost).  Prints how long read_committed took to catch up.

Exit status 0 on success; otherwise a message on stderr says what was wrong.
"""

import os
import socket
import struct
import sys
import time

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError,
                             KafkaException, Producer, TopicPartition)

import samsa_client

PER_PARTITION = 10


def partitions_of(topic):
    md = samsa_client.admin_client().list_topics(topic=topic, timeout=30)
    t = md.topics[topic]
    if t.error is not None or not t.partitions:
        raise RuntimeError("no metadata for %s: %s" % (topic, t.error))
    return len(t.partitions)


def values(prefix, nparts):
    return ["%s-%d-%d" % (prefix, p, i)
            for p in range(nparts) for i in range(PER_PARTITION)]


def transactional(topic, txn_id, prefix, timeout_ms):
    nparts = partitions_of(topic)
    p = Producer({
        "bootstrap.servers": samsa_client.bootstrap(),
        "transactional.id": txn_id,
        "transaction.timeout.ms": timeout_ms,
        "linger.ms": 0,
    })
    p.init_transactions(30)
    p.begin_transaction()
    failed = []

    def on_delivery(err, msg):
        if err is not None:
            failed.append("%s: %s" % (msg.value(), err))

    for v in values(prefix, nparts):
        part = int(v.rsplit("-", 2)[1])
        p.produce(topic, value=v.encode(), partition=part,
                  on_delivery=on_delivery)
    if p.flush(30) != 0:
        raise RuntimeError("records of %s not acknowledged in 30 s" % prefix)
    if failed:
        raise RuntimeError("deliveries failed: %s" % failed[:5])
    return p


def cmd_commit(topic, txn_id, prefix):
    p = transactional(topic, txn_id, prefix, 60000)
    p.commit_transaction(30)
    print("txn_restart_tool: %s committed (%s)" % (prefix, txn_id))
    return 0


def cmd_open(topic, txn_id, prefix, timeout_ms):
    transactional(topic, txn_id, prefix, int(timeout_ms))
    print("txn_restart_tool: %s left open (%s, timeout %s ms)"
          % (prefix, txn_id, timeout_ms))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # no abort, no close: the transaction stays open


def high_watermarks(topic, nparts):
    c = Consumer({"bootstrap.servers": samsa_client.bootstrap(),
                  "group.id": samsa_client.unique("txn-restart-hw"),
                  "isolation.level": "read_uncommitted"})
    try:
        return [c.get_watermark_offsets(TopicPartition(topic, p), 30)[1]
                for p in range(nparts)]
    finally:
        c.close()


def read(topic, nparts, isolation, until, deadline):
    """Values read from the beginning until every partition reached EOF at
    its offset in `until` (or beyond); (values, eof offsets, done)."""
    c = Consumer({
        "bootstrap.servers": samsa_client.bootstrap(),
        "group.id": samsa_client.unique("txn-restart-reader"),
        "isolation.level": isolation,
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
              for p in range(nparts)])
    got = []
    eof = {}
    try:
        while time.monotonic() < deadline:
            if len(eof) == nparts and all(
                    eof[p] >= until[p] for p in range(nparts)):
                return got, eof, True
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof[m.partition()] = m.offset()
                    continue
                raise KafkaException(m.error())
            eof.pop(m.partition(), None)
            got.append(m.value().decode())
        return got, eof, False
    finally:
        c.close()


def cmd_check(topic, seconds, prefixes):
    if "--" not in prefixes:
        raise SystemExit("check: missing -- before the hidden prefixes")
    i = prefixes.index("--")
    visible, hidden = prefixes[:i], prefixes[i + 1:]
    nparts = partitions_of(topic)
    hw = high_watermarks(topic, nparts)
    start = time.monotonic()
    got, eof, done = read(topic, nparts, "read_committed", hw,
                          start + float(seconds))
    took = time.monotonic() - start
    errors = []
    if not done:
        errors.append(
            "read_committed did not reach the high watermarks %s in %s s "
            "(end of partition at %s): the LSO is stuck" % (hw, seconds, eof))
    want = set(v for p in visible for v in values(p, nparts))
    counts = {}
    for v in got:
        counts[v] = counts.get(v, 0) + 1
    missing = sorted(want - set(counts))
    if missing:
        errors.append("%d committed records not seen by read_committed, "
                      "e.g. %s" % (len(missing), missing[:5]))
    dups = sorted(v for v, n in counts.items() if n > 1)
    if dups:
        errors.append("records seen more than once: %s" % dups[:5])
    leaked = sorted(v for v in counts if v.rsplit("-", 2)[0] in hidden)
    if leaked:
        errors.append("%d records of an aborted transaction seen by "
                      "read_committed, e.g. %s" % (len(leaked), leaked[:5]))
    other = sorted(v for v in counts
                   if v not in want and v.rsplit("-", 2)[0] not in hidden)
    if other:
        errors.append("unexpected records: %s" % other[:5])
    if hidden:
        ru, _, ru_done = read(topic, nparts, "read_uncommitted", hw,
                              time.monotonic() + 30)
        ru_set = set(ru)
        absent = sorted(v for p in hidden for v in values(p, nparts)
                        if v not in ru_set)
        if not ru_done or absent:
            errors.append("read_uncommitted (done: %s) lacks %d records of the "
                          "open transaction, e.g. %s: they never were in the "
                          "log" % (ru_done, len(absent), absent[:5]))
    if errors:
        for e in errors:
            print("txn_restart_tool: check: " + e, file=sys.stderr)
        return 1
    print("txn_restart_tool: read_committed caught up in %.1f s: %d records "
          "of %s, none of %s" % (took, len(got), visible, hidden))
    return 0


def cmd_init_at_once(txn_id):
    host, port = samsa_client.bootstrap().rsplit(":", 1)
    deadline = time.monotonic() + 60
    while True:
        try:
            s = socket.create_connection((host, int(port)), timeout=10)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)
    s.settimeout(10)
    tid = txn_id.encode()
    give_up = time.monotonic() + 30
    for corr in range(1, 100000):
        body = (struct.pack(">hhih", 22, 1, corr, 4) + b"init" +
                struct.pack(">h", len(tid)) + tid + struct.pack(">i", 60000))
        s.sendall(struct.pack(">i", len(body)) + body)
        head = s.recv(4, socket.MSG_WAITALL)
        frame = s.recv(struct.unpack(">i", head)[0], socket.MSG_WAITALL)
        err = struct.unpack_from(">h", frame, 8)[0]
        if err == 0:
            return 0
        if err != 51 or time.monotonic() > give_up:  # CONCURRENT_TRANSACTIONS
            print("txn_restart_tool: InitProducerId at once: error %d" % err,
                  file=sys.stderr)
            return 1
        time.sleep(0.1)
    return 1


def main(argv):
    if len(argv) == 2 and argv[0] == "init-at-once":
        return cmd_init_at_once(argv[1])
    if len(argv) == 4 and argv[0] == "commit":
        return cmd_commit(*argv[1:])
    if len(argv) == 5 and argv[0] == "open":
        return cmd_open(*argv[1:])
    if len(argv) >= 3 and argv[0] == "check":
        return cmd_check(argv[1], argv[2], argv[3:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
