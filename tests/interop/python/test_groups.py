"""Acceptance 3 (issue 3): confluent-kafka-python consumers in one group.

Three members over a 6-partition topic, with the range and with the
cooperative-sticky assignor of the classic protocol, and with the consumer
group protocol of KIP-848 (group.protocol=consumer, the broker assigns).  Each member is a subprocess (group_worker.py)
so one can be killed with SIGKILL, without a LeaveGroup.  100k records are
produced first; members consume them slowly while others join and leave,
committing per batch.  Checked:

- after every join and leave, once the group is Stable again, each partition
  has exactly one owner among the live members;
- a killed member keeps its partitions until its session timeout has
  passed (the classic members' session.timeout.ms, 6 s; for the consumer
  protocol the broker's group.consumer.session.timeout.ms, 45 s by
  default), then the others own them;
- every record is reported as committed by exactly one member (offset
  ranges per partition neither overlap nor leave holes), and the group's
  committed offsets are the high watermarks.
"""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition

from samsa_client import create_topic, unique

RECORDS = int(os.environ.get("SAMSA_PY_GROUP_RECORDS", "100000"))
PARTITIONS = 6
# Session timeouts: the classic members ask for 6 s; the consumer protocol
# has the broker's default.
SESSION_S = {"range": 6.0, "cooperative-sticky": 6.0, "consumer": 45.0}
RATE = 1500  # records a second per member, so that rebalances meet traffic
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "group_worker.py")


class Worker:
    def __init__(self, bootstrap, topic, group, strategy):
        self.proc = subprocess.Popen(
            [sys.executable, WORKER, bootstrap, topic, group, strategy,
             str(RATE)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.owned = set()
        self.commits = []  # (partition, first, last)
        self.closed = False
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            kind, _, rest = line.strip().partition(" ")
            with self.lock:
                if kind == "A":
                    self.owned = {int(p) for p in rest.split(",") if p}
                elif kind == "C":
                    p, first, last = (int(x) for x in rest.split())
                    self.commits.append((p, first, last))
                elif kind == "X":
                    self.closed = True

    def close(self):
        self.proc.stdin.write("close\n")
        self.proc.stdin.flush()
        self.proc.wait(30)
        self.thread.join(10)
        assert self.closed

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.thread.join(10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def describe(admin, group):
    g = admin.describe_consumer_groups([group])[group].result(15)
    return str(g.state).split(".")[-1].upper(), len(g.members)


def wait_owned(admin, group, live, timeout=60.0):
    """Waits until the group is Stable with the live members only and each
    partition has exactly one owner among them; returns the seconds taken."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < timeout:
        state, members = describe(admin, group)
        sets = []
        for w in live:
            with w.lock:
                sets.append(set(w.owned))
        union = set().union(*sets)
        disjoint = sum(len(s) for s in sets) == len(union)
        last = (state, members, sets)
        if (state == "STABLE" and members == len(live) and disjoint
                and union == set(range(PARTITIONS))):
            # Owners settle after the state does: confirm once more.
            time.sleep(0.3)
            sets2 = [set(w.owned) for w in live]
            if sets2 == sets:
                return time.monotonic() - t0
        time.sleep(0.1)
    raise AssertionError("no single owner per partition after %.0fs: %r"
                         % (timeout, last))


def produce(bootstrap, topic):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20,
                  "batch.num.messages": 2000})
    for i in range(RECORDS):
        while True:
            try:
                p.produce(topic, value=b"%d" % i, partition=i % PARTITIONS)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(60) == 0


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky", "consumer"])
def test_group_members_join_leave_and_die(bootstrap, admin, strategy):
    topic = unique("py-group-" + strategy)
    group = unique("py-g-" + strategy)
    create_topic(admin, topic, PARTITIONS)
    produce(bootstrap, topic)

    workers = []

    def start():
        w = Worker(bootstrap, topic, group, strategy)
        workers.append(w)
        return w

    try:
        w1 = start()
        wait_owned(admin, group, [w1])
        w2 = start()
        wait_owned(admin, group, [w1, w2])
        w3 = start()
        wait_owned(admin, group, [w1, w2, w3])
        w1.close()  # LeaveGroup
        wait_owned(admin, group, [w2, w3])
        w4 = start()
        wait_owned(admin, group, [w2, w3, w4])

        # Everything consumed and committed before the kill, so that the
        # killed member has nothing in flight.
        deadline = time.monotonic() + 90
        while sum(last - first + 1 for w in workers
                  for (_, first, last) in list(w.commits)) < RECORDS:
            assert time.monotonic() < deadline, "records not all committed"
            time.sleep(0.2)

        owned_by_killed = set(w2.owned)
        assert owned_by_killed
        t_kill = time.monotonic()
        w2.kill()
        # Until the session times out the group still counts it.
        session = SESSION_S[strategy]
        time.sleep(session / 2)
        state, members = describe(admin, group)
        assert members == 3, "killed member left before its session expired"
        wait_owned(admin, group, [w3, w4], timeout=session + 30)
        took = time.monotonic() - t_kill
        assert session * 0.8 <= took <= session + 15, took
        assert owned_by_killed <= (w3.owned | w4.owned)
        w3.close()
        w4.close()
    finally:
        for w in workers:
            w.stop()

    # Each record committed by exactly one member.
    ranges = {p: [] for p in range(PARTITIONS)}
    for i, w in enumerate(workers):
        for p, first, last in w.commits:
            ranges[p].append((first, last, "w%d" % (i + 1)))
    total = 0
    for p, rs in ranges.items():
        rs.sort()
        nxt = 0
        for first, last, _ in rs:
            # The message names who committed what, for a failure in CI.
            assert first == nxt, "partition %d: %s at %d: %r" % (
                p, "overlap" if first < nxt else "hole", nxt, rs)
            nxt = last + 1
        total += nxt
    assert total == RECORDS

    # The committed offsets are the ends of the partitions.
    res = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group)])[group].result(15)
    got = {tp.partition: tp.offset for tp in res.topic_partitions
           if tp.topic == topic}
    want = {p: RECORDS // PARTITIONS + (1 if p < RECORDS % PARTITIONS else 0)
            for p in range(PARTITIONS)}
    assert got == want
