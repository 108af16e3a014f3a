"""Steps of tests/interop/groups_restart.sh (issue 3, acceptance 6), run with
the interop venv's python against SAMSA_BOOTSTRAP:

    commit TOPIC GROUP STATE.json   create TOPIC (3 partitions, 300 records),
                                    consume part of it in GROUP, commit the
                                    positions with metadata, close; the
                                    commits go to STATE.json
    check TOPIC GROUP STATE.json    the committed offsets and metadata are
                                    those of STATE.json, and a new member of
                                    GROUP reads exactly the records after
                                    them
    live TOPIC GROUP SECONDS OUT.json
                                    one member of GROUP polling for SECONDS;
                                    writes the member ids it had and how many
                                    times its partitions were revoked
    owners TOPIC GROUP SECONDS OUT.json
                                    one member of GROUP with the consumer
                                    protocol (KIP-848) polling for SECONDS;
                                    writes when it owned each partition
                                    (wall clock; spans still open end at
                                    "end", when it stopped polling)
    wire-before TOPIC PREFIX STATE.json
                                    on the wire (KIP-848), TOPIC with 4
                                    partitions: a member of PREFIX-kept and
                                    one of PREFIX-resumed take all 4 each and
                                    stay; one of PREFIX-emptied takes them and
                                    leaves; the members go to STATE.json
    wire-after TOPIC PREFIX STATE.json SINCE
                                    after a restart begun at SINCE (epoch
                                    seconds), with sessions of 8 s: the member
                                    of PREFIX-resumed carries on with its
                                    epoch and partitions; a new member of
                                    PREFIX-emptied gets all 4 at once; a new
                                    one of PREFIX-kept gets none while the
                                    member from before may be reading them,
                                    that is until its session (restarted
                                    with samsa) has ended, then all 4
"""

import json
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition

from samsa_client import admin_client, bootstrap, create_topic, wait_broker
from test_groups_consumer_wire import NONE, describe, heartbeat, join, total
from test_groups_wire import Conn

PARTITIONS = 3
RECORDS = 300
# Positions committed per partition, with metadata that must come back
# byte for byte (non-ASCII included).
COMMIT = {0: 40, 1: 55, 2: 100}


def consumer(group, **extra):
    """extra settings override (None: leaves the setting out)."""
    conf = {"bootstrap.servers": bootstrap(), "group.id": group,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "session.timeout.ms": 10000}
    conf.update(extra)
    return Consumer({k: v for k, v in conf.items() if v is not None})


def commit(topic, group, state):
    admin = admin_client()
    wait_broker(admin)
    create_topic(admin, topic, PARTITIONS)
    p = Producer({"bootstrap.servers": bootstrap()})
    for i in range(RECORDS):
        p.produce(topic, value=b"%d" % i, partition=i % PARTITIONS)
    assert p.flush(60) == 0
    c = consumer(group)
    c.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + 60
    while seen < RECORDS and time.monotonic() < deadline:
        seen += len([m for m in c.consume(100, 0.5) if not m.error()])
    assert seen == RECORDS, seen
    offs = [TopicPartition(topic, p, o, metadata="ünï-%d\x01" % p)
            for p, o in COMMIT.items()]
    c.commit(offsets=offs, asynchronous=False)
    got = c.committed([TopicPartition(topic, p) for p in COMMIT], timeout=30)
    c.close()
    saved = {str(t.partition): [t.offset, t.metadata] for t in got}
    assert saved == {str(p): [o, "ünï-%d\x01" % p] for p, o in COMMIT.items()}
    with open(state, "w") as f:
        json.dump(saved, f)


def check(topic, group, state):
    with open(state) as f:
        saved = json.load(f)
    wait_broker(admin_client(), 60)
    c = consumer(group)
    got = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)],
                      timeout=30)
    now = {str(t.partition): [t.offset, t.metadata] for t in got}
    assert now == saved, "committed offsets changed: %r != %r" % (now, saved)
    c.subscribe([topic])
    want = {p: set(range(o, RECORDS // PARTITIONS)) for p, o in
            ((int(k), v[0]) for k, v in saved.items())}
    # Partition p holds records p, p+3, ... at offsets 0, 1, ...
    expect = sum(len(s) for s in want.values())
    seen = {p: set() for p in range(PARTITIONS)}
    deadline = time.monotonic() + 60
    n = 0
    while n < expect and time.monotonic() < deadline:
        for m in c.consume(100, 0.5):
            if m.error():
                continue
            off = m.offset()
            assert off in want[m.partition()], (
                "partition %d: offset %d read again after the restart"
                % (m.partition(), off))
            assert off not in seen[m.partition()], "offset read twice"
            assert int(m.value()) == off * PARTITIONS + m.partition()
            seen[m.partition()].add(off)
            n += 1
    c.close()
    assert seen == want, "resumed consumer read %r, not %r" % (
        {p: len(s) for p, s in seen.items()},
        {p: len(s) for p, s in want.items()})


def live(topic, group, seconds, out):
    revoked = [0]
    c = consumer(group, **{"heartbeat.interval.ms": 500})

    def on_revoke(cons, parts):
        if parts:
            revoked[0] += 1

    c.subscribe([topic], on_revoke=on_revoke, on_lost=on_revoke)
    ids = []
    end = time.monotonic() + float(seconds)
    while time.monotonic() < end:
        c.poll(0.2)
        mid = c.memberid()
        if mid and (not ids or ids[-1] != mid):
            ids.append(mid)
    with open(out, "w") as f:
        json.dump({"member_ids": ids, "revoked": revoked[0],
                   "assigned": [t.partition for t in c.assignment()]}, f)
    c.close()


def owners(topic, group, seconds, out):
    c = consumer(group, **{"group.protocol": "consumer",
                           "session.timeout.ms": None})
    since = {}      # partition -> wall time it was assigned
    spans = []      # [partition, from, to]

    def on_assign(cons, parts):
        for t in parts:
            since[t.partition] = time.time()

    def on_revoke(cons, parts):
        for t in parts:
            if t.partition in since:
                spans.append([t.partition, since.pop(t.partition), time.time()])

    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke,
                on_lost=on_revoke)
    end = time.monotonic() + float(seconds)
    while time.monotonic() < end:
        c.poll(0.1)
    now = time.time()
    spans += [[p, t, now] for p, t in since.items()]
    with open(out, "w") as f:
        json.dump({"spans": spans, "end": now}, f)
    c.close()


def wire_join(c, group, topic, partitions):
    r = join(c, group, str(uuid.uuid4()), [topic])
    assert r["error"] == NONE, r
    assert total(r["assignment"]) == partitions, (group, r)
    return r


def wire_before(topic, prefix, state):
    create_topic(admin_client(), topic, 4)
    c = Conn(bootstrap())
    members = {g: wire_join(c, "%s-%s" % (prefix, g), topic, 4)
               for g in ("kept", "resumed", "emptied")}
    left = heartbeat(c, prefix + "-emptied", members["emptied"]["member"], -1)
    assert left["error"] == NONE, left
    c.close()
    with open(state, "w") as f:
        json.dump({g: [r["member"], r["epoch"]] for g, r in members.items()},
                  f)


def wire_after(topic, prefix, state, since):
    with open(state) as f:
        members = json.load(f)
    wait_broker(admin_client(), 60)
    c = Conn(bootstrap())
    # The member from before heartbeats as if nothing happened.
    member, epoch = members["resumed"]
    r = heartbeat(c, prefix + "-resumed", member, epoch)
    assert r["error"] == NONE, r
    d = describe(c, prefix + "-resumed")
    assert [(m["id"], m["epoch"], len(m["assignment"].get(topic, ())))
            for m in d["members"]] == [(member, r["epoch"], 4)], (r, d)
    wire_join(c, prefix + "-emptied", topic, 4)
    r = wire_join(c, prefix + "-kept", topic, 0)
    end = time.monotonic() + 30
    while total(r["assignment"]) == 0 and time.monotonic() < end:
        time.sleep(0.25)
        r = heartbeat(c, prefix + "-kept", r["member"], r["epoch"])
        assert r["error"] == NONE, r
    got = time.time()
    assert total(r["assignment"]) == 4, r
    assert got >= float(since) + 8, (
        "partitions handed out %.3f s after the restart began, within the "
        "session of the member before it" % (got - float(since)))
    c.close()


def main(argv):
    if len(argv) == 4 and argv[0] == "commit":
        commit(*argv[1:])
    elif len(argv) == 4 and argv[0] == "check":
        check(*argv[1:])
    elif len(argv) == 5 and argv[0] == "live":
        live(*argv[1:])
    elif len(argv) == 5 and argv[0] == "owners":
        owners(*argv[1:])
    elif len(argv) == 4 and argv[0] == "wire-before":
        wire_before(*argv[1:])
    elif len(argv) == 5 and argv[0] == "wire-after":
        wire_after(*argv[1:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
