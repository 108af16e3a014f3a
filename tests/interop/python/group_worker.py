"""One group member for test_groups.py, run as a subprocess so that the test
can kill it with SIGKILL (no LeaveGroup).

    python group_worker.py BOOTSTRAP TOPIC GROUP STRATEGY RATE

Subscribes TOPIC in GROUP (STRATEGY "consumer": with the consumer group
protocol of KIP-848, group.protocol=consumer, which assigns incrementally
as cooperative-sticky does), consumes at most RATE records a second and
commits what it consumed (synchronously, per batch).  Writes one line per
event to stdout, flushed at once:

    A p,p,...         the partitions it owns now (after every rebalance call)
    C p first last    offsets first..last of partition p are committed by it
    X                 it closed (after "close" on stdin)

A batch is reported only once its commit succeeded, and only for partitions
it still owns: a batch whose commit failed is read again by whoever owns the
partition next, from the committed offset.
"""

import select
import sys
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition


def main():
    bootstrap, topic, group, strategy, rate = sys.argv[1:6]
    rate = float(rate)
    cooperative = strategy in ("cooperative-sticky", "consumer")
    owned = set()

    def say(line):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def show():
        say("A " + ",".join(str(p) for p in sorted(owned)))

    def on_assign(c, parts):
        if not cooperative:
            owned.clear()
        owned.update(p.partition for p in parts)
        show()

    def on_revoke(c, parts):
        if cooperative:
            owned.difference_update(p.partition for p in parts)
        else:
            owned.clear()
        show()

    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "client.id": "worker",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    if strategy == "consumer":
        # The broker sets the session and heartbeat times.
        conf["group.protocol"] = "consumer"
    else:
        conf.update({"partition.assignment.strategy": strategy,
                     "session.timeout.ms": 6000,
                     "heartbeat.interval.ms": 500})
    c = Consumer(conf)
    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke,
                on_lost=on_revoke)
    pending = {}  # partition -> [first, last] consumed, not committed
    batch = max(1, int(rate / 10))
    while True:
        r, _, _ = select.select([sys.stdin], [], [], 0)
        if r and sys.stdin.readline().strip() == "close":
            break
        t0 = time.monotonic()
        for m in c.consume(batch, timeout=0.1):
            if m.error():
                continue
            p, off = m.partition(), m.offset()
            cur = pending.get(p)
            if cur and off == cur[1] + 1:
                cur[1] = off
            else:
                # A new range: the partition came back from its committed
                # offset; what was pending is read again anyway.
                pending[p] = [off, off]
        for p in list(pending):
            if p not in owned:
                del pending[p]
        if pending:
            offs = [TopicPartition(topic, p, last + 1)
                    for p, (first, last) in pending.items()]
            try:
                c.commit(offsets=offs, asynchronous=False)
                for p, (first, last) in sorted(pending.items()):
                    say("C %d %d %d" % (p, first, last))
                pending.clear()
            except KafkaException:
                pass  # retried after the next poll, if still owned
        spent = time.monotonic() - t0
        if spent < 0.1:
            time.sleep(0.1 - spent)
    c.close()
    say("X")


if __name__ == "__main__":
    main()
