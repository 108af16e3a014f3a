"""The producer loop and the check of tests/interop/restart.sh (acceptance 5).

    python restart_tool.py produce TOPIC SECONDS RATE ACKS_FILE
        An idempotent producer (acks=all) sends about RATE records a second
        for SECONDS, to partition seq % (partitions of TOPIC), then flushes.
        Every delivery report is written to ACKS_FILE as one JSON line:
        {"seq", "partition", "offset", "produced", "acked"} or, on failure,
        {"seq", "error", ...}; times are time.time().  Exit status 0 unless
        the producer hit a fatal error or records stayed unacknowledged.

    python restart_tool.py check TOPIC ACKS_FILE RESTARTED_AT
        Reads the whole topic with an assigning consumer and checks that
        every acknowledged record is at the offset its report gave, with
        its bytes; that no record is there twice; that no delivery failed;
        and that records produced after RESTARTED_AT (when Postgres was back)
        were acknowledged too: the producer carried on.
"""

import json
import sys
import time

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError,
                             Producer, TopicPartition)
from confluent_kafka.admin import AdminClient

import samsa_client


def key_of(seq):
    return b"r%06d" % seq


def value_of(seq):
    return b"restart-%06d-" % seq + b"z" * (seq % 50)


def partitions_of(topic):
    admin = AdminClient({"bootstrap.servers": samsa_client.bootstrap()})
    md = admin.list_topics(topic=topic, timeout=30)
    t = md.topics[topic]
    if t.error is not None or not t.partitions:
        raise RuntimeError("no metadata for %s: %s" % (topic, t.error))
    return len(t.partitions)


def produce(topic, seconds, rate, acks_path):
    nparts = partitions_of(topic)
    fatal = []
    errors = []
    produced_at = {}
    out = open(acks_path, "w")
    counts = {"acked": 0, "failed": 0}

    def on_error(err):
        errors.append("%.3f %s" % (time.time(), err))
        if err.fatal():
            fatal.append(str(err))

    def on_delivery(err, msg):
        seq = int(msg.key()[1:])
        rec = {"seq": seq, "produced": produced_at.get(seq), "acked": time.time()}
        if err is not None:
            rec["error"] = str(err)
            counts["failed"] += 1
        else:
            rec["partition"] = msg.partition()
            rec["offset"] = msg.offset()
            counts["acked"] += 1
        out.write(json.dumps(rec) + "\n")

    p = Producer({
        "bootstrap.servers": samsa_client.bootstrap(),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        # Long enough to ride out a Postgres restart; short enough that a
        # broker that never recovers fails the run instead of hanging it.
        "message.timeout.ms": 90000,
        "error_cb": on_error,
    })
    start = time.time()
    seq = 0
    while time.time() - start < seconds and not fatal:
        due = start + seq / rate
        now = time.time()
        if due > now:
            p.poll(due - now)
            continue
        produced_at[seq] = time.time()
        p.produce(topic, key=key_of(seq), value=value_of(seq),
                  partition=seq % nparts, on_delivery=on_delivery)
        seq += 1
        p.poll(0)
    left = p.flush(120)
    out.close()
    print("restart producer: %d produced, %d acked, %d failed, %d unacknowledged"
          % (seq, counts["acked"], counts["failed"], left))
    for e in errors[:20]:
        print("restart producer: client error: " + e)
    if fatal:
        print("restart producer: FATAL: %s" % fatal, file=sys.stderr)
        return 1
    if left:
        print("restart producer: %d records never acknowledged" % left, file=sys.stderr)
        return 1
    return 0


def check(topic, acks_path, restarted_at):
    acked, failed = {}, []
    produced_after = 0
    with open(acks_path) as f:
        for line in f:
            rec = json.loads(line)
            if "error" in rec:
                failed.append(rec)
                continue
            acked[rec["seq"]] = rec
            if rec["produced"] is not None and rec["produced"] > restarted_at:
                produced_after += 1
    problems = []
    if failed:
        problems.append("%d deliveries failed, first: %s" % (len(failed), failed[:3]))
    if not acked:
        problems.append("nothing was acknowledged")
    if produced_after < 10:
        problems.append("only %d records produced after the Postgres restart "
                        "were acknowledged: the producer did not carry on"
                        % produced_after)

    nparts = partitions_of(topic)
    c = Consumer({
        "bootstrap.servers": samsa_client.bootstrap(),
        "group.id": "samsa-interop-assign-only",  # never joined nor committed
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "error",
    })
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(nparts)])
    highs = {}
    for p in range(nparts):
        highs[p] = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30,
                                           cached=False)[1]
    found = {}
    eof = set()
    deadline = time.monotonic() + 120
    total = sum(highs.values())
    count = 0
    while len(eof) < nparts and time.monotonic() < deadline:
        for m in c.consume(num_messages=1000, timeout=1.0):
            if m.error() is not None:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    if m.offset() >= highs[m.partition()]:
                        eof.add(m.partition())
                    continue
                if m.topic() == topic:
                    problems.append("consume error: %s" % m.error())
                continue
            count += 1
            seq = int(m.key()[1:])
            if m.value() != value_of(seq):
                problems.append("record %d at %d/%d has other bytes"
                                % (seq, m.partition(), m.offset()))
            if seq in found:
                problems.append("record %d twice: %s and %s" % (
                    seq, found[seq], (m.partition(), m.offset())))
            found[seq] = (m.partition(), m.offset())
    c.close()
    if len(eof) < nparts:
        problems.append("read %d of %d records before giving up" % (count, total))

    missing = [s for s, r in acked.items()
               if found.get(s) != (r["partition"], r["offset"])]
    if missing:
        problems.append("%d acknowledged records missing or moved, first: %s"
                        % (len(missing), [(s, acked[s]["partition"],
                                           acked[s]["offset"], found.get(s))
                                          for s in sorted(missing)[:5]]))
    print("restart check: %d acknowledged (%d produced after the restart), "
          "%d in the topic" % (len(acked), produced_after, len(found)))
    for msg in problems[:20]:
        print("restart check: " + msg, file=sys.stderr)
    return 1 if problems else 0


def main(argv):
    if len(argv) == 5 and argv[0] == "produce":
        return produce(argv[1], float(argv[2]), float(argv[3]), argv[4])
    if len(argv) == 4 and argv[0] == "check":
        return check(argv[1], argv[2], float(argv[3]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
