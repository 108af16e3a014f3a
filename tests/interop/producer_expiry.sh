#!/usr/bin/env bash
# Idempotent producer state expires (producer.id.expiration.ms, Kafka's
# broker config), with a Postgres and a samsa of this test's own
# (tests/lib.sh) started with --config setting it to 2 s, checked every
# 0.5 s.  An idempotent librdkafka producer writes, goes idle past the
# expiry, and writes again (python/producer_expiry_tool.py):
#
#  1. DescribeConfigs reports the configured value;
#  2. samsa logs that it forgot the idle producer;
#  3. the producer's later records (sequence 5 on, from a producer samsa no
#     longer knows) are taken, as Kafka takes them, and read back once;
#  4. connections.max.idle.ms (1.5 s here): a connection that sends nothing
#     is closed, as Kafka closes it (the idle producer above reconnected).
#
# Environment: SAMSA_BIN, SAMSA_PY, SAMSA_TEST_DIR (scratch space; default a
# temp dir).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"

test_begin producer_expiry

export PYTHONPATH=$here/python
printf '%s\n' producer.id.expiration.ms=2000 \
	producer.id.expiration.check.interval.ms=500 \
	connections.max.idle.ms=1500 >"$work/samsa.conf"
samsa_start "$work" --config "$work/samsa.conf" || fail "could not start Postgres and samsa"

t=pexp-$(date +%s)-$RANDOM
"$SAMSA_PY" "$here/python/samsa_client.py" create-topic "$t" 1 || fail "create $t"
"$SAMSA_PY" "$here/python/producer_expiry_tool.py" "$t" 2000 ||
	fail "idempotent producer across producer.id.expiration.ms"
grep -aq "forgot 1 producer state entry" "$SAMSA_LOG" ||
	fail "samsa did not log that it forgot the idle producer"
echo "producer_expiry: idle producer forgotten, its later writes taken: ok"

"$SAMSA_PY" - "$SAMSA_BOOTSTRAP" <<'PY' || fail "an idle connection was not closed after connections.max.idle.ms"
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=10)
t0 = time.monotonic()
assert s.recv(1) == b"", "data from samsa"
waited = time.monotonic() - t0
assert 1.0 < waited < 6, "closed after %.1f s" % waited
PY
grep -aq "idle for connections.max.idle.ms (1500 ms)" "$SAMSA_LOG" ||
	fail "samsa did not say why it closed the idle connection"
echo "producer_expiry: idle connection closed: ok"

samsa_alive || fail "samsa died"
samsa_stop || fail "samsa did not stop cleanly at the end"
echo "producer_expiry: ok"
