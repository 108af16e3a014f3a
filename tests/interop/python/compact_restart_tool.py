"""Helper of tests/interop/compact_restart.sh (log compaction across crashes).

    compact_restart_tool.py produce TOPIC ROUND KEYS N
        N updates to KEYS keys (zstd, idempotent): key k%KEYS, value
        "ROUND-i"; exits non-zero on any delivery error
    compact_restart_tool.py check TOPIC ROUND KEYS N TOTAL TIMEOUT
        within TIMEOUT s the partition holds at most KEYS records, each key
        with the value of ROUND's last update, ends at offset TOTAL - 1 with
        high watermark TOTAL and log start 0
"""

import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition

from samsa_client import bootstrap, unique
from test_compaction import latest, read_all


def expected(rnd, keys, n):
    return {b"key-%04d" % (i % keys): b"%d-%d" % (rnd, i) for i in range(n)}


def produce(topic, rnd, keys, n):
    p = Producer({"bootstrap.servers": bootstrap(), "linger.ms": 5,
                  "batch.num.messages": 300, "compression.type": "zstd",
                  "enable.idempotence": True})
    errors = []

    def done(err, msg):
        if err is not None:
            errors.append(err)
    for i in range(n):
        while True:
            try:
                p.produce(topic, key=b"key-%04d" % (i % keys),
                          value=b"%d-%d" % (rnd, i), on_delivery=done)
                break
            except BufferError:
                p.poll(0.05)
    if p.flush(60) != 0 or errors:
        print("produce: %d undelivered, errors %s" % (len(p), errors[:3]))
        return 1
    return 0


def check(topic, rnd, keys, n, total, timeout):
    want = expected(rnd, keys, n)
    deadline = time.monotonic() + timeout
    while True:
        records = read_all(bootstrap(), topic)
        ok = (len(records) <= keys and latest(records) == want
              and records[-1][0] == total - 1)
        if ok or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": unique("wm")})
    wm = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    c.close()
    if not ok or wm != (0, total):
        got = latest(records)
        wrong = [k for k in want if got.get(k) != want[k]]
        print("check: %d records, last offset %s, watermarks %s, %d keys "
              "wrong (e.g. %s)" % (len(records),
                                   records[-1][0] if records else None, wm,
                                   len(wrong), wrong[:3]))
        return 1
    print("check: round %s: %d records, latest value of every key" %
          (rnd, len(records)))
    return 0


def main(argv):
    if len(argv) == 5 and argv[0] == "produce":
        return produce(argv[1], int(argv[2]), int(argv[3]), int(argv[4]))
    if len(argv) == 7 and argv[0] == "check":
        return check(argv[1], int(argv[2]), int(argv[3]), int(argv[4]),
                     int(argv[5]), float(argv[6]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
