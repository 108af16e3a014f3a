"""The client side of tests/interop/producer_expiry.sh: an idempotent
producer (librdkafka) that goes idle for longer than the broker's
producer.id.expiration.ms and then writes again.

    python producer_expiry_tool.py TOPIC EXPIRATION_MS

Checks that DescribeConfigs on the broker reports producer.id.expiration.ms
as EXPIRATION_MS (set through --config); writes five records one at a time
to partition 0, sleeps EXPIRATION_MS plus two seconds (the broker forgets
the producer meanwhile), writes five more with the same producer, whose
sequence goes on from 5: Kafka takes any sequence from a producer it has
no state for, so every record must be delivered; then reads the partition
and expects the ten records once each, in order.

Exit status 0 on success; otherwise a message on stderr says what was wrong.
"""

import os
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType


def fail(msg):
    print("producer_expiry_tool: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 3:
        fail("usage: producer_expiry_tool.py TOPIC EXPIRATION_MS")
    topic, expiry_ms = sys.argv[1], int(sys.argv[2])
    bs = os.environ["SAMSA_BOOTSTRAP"]

    admin = AdminClient({"bootstrap.servers": bs})
    res = ConfigResource(ResourceType.BROKER, "0")
    cfg = admin.describe_configs([res])[res].result(timeout=10)
    got = cfg["producer.id.expiration.ms"].value
    if got != str(expiry_ms):
        fail("broker producer.id.expiration.ms is %s, not %d" % (got, expiry_ms))

    errors = []

    def delivered(err, msg):
        if err:
            errors.append(err)

    p = Producer({"bootstrap.servers": bs, "enable.idempotence": True,
                  "linger.ms": 0})
    sent = []
    for i in range(5):
        sent.append(b"before-%d" % i)
        p.produce(topic, value=sent[-1], partition=0, on_delivery=delivered)
        p.flush(10)
    time.sleep(expiry_ms / 1000.0 + 2)
    for i in range(5):
        sent.append(b"after-%d" % i)
        p.produce(topic, value=sent[-1], partition=0, on_delivery=delivered)
        p.flush(10)
    if p.flush(10) != 0:
        fail("records still undelivered")
    if errors:
        fail("delivery errors after the producer expired: %s" % errors)

    c = Consumer({"bootstrap.servers": bs, "group.id": "pexp-check",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    seen = []
    deadline = time.time() + 20
    while len(seen) < len(sent) and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            seen.append(m.value())
    c.close()
    if seen != sent:
        fail("read %r, wrote %r" % (seen, sent))
    print("producer_expiry_tool: 10 records delivered across the expiry")


if __name__ == "__main__":
    main()
