#!/usr/bin/env bash
# Log compaction across crashes: samsa killed (SIGKILL) at varying moments
# while a compacted topic is written and cleaned, with a Postgres and a
# samsa of this test's own (tests/lib.sh) and librdkafka
# (python/compact_restart_tool.py).  Every round writes 20000 updates over
# 500 keys (zstd batches), waits 0-1.5 s, kills samsa and starts it again;
# then the partition must converge to one record per key holding that
# round's last value, with the end of the log and the log start where they
# were (a pass cut short by the kill is run again, never loses a latest
# value, never leaves half a chunk).
#
# Environment: SAMSA_BIN, SAMSA_PY, SAMSA_TEST_DIR (scratch space; default a
# temp dir).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"

test_begin compact_restart

tool=$here/python/compact_restart_tool.py
export PYTHONPATH=$here/python

samsa_start "$work" || fail "could not start Postgres and samsa"
echo "compact_restart: samsa on $SAMSA_BOOTSTRAP, Postgres on port $SAMSA_PG_PORT"

t=cpr-$(date +%s)-$RANDOM
"$SAMSA_PY" "$here/python/samsa_client.py" create-topic "$t" 1 \
	cleanup.policy=compact segment.ms=100 min.cleanable.dirty.ratio=0.01 ||
	fail "create $t"

keys=500 n=20000 total=0
for round in 1 2 3 4; do
	"$SAMSA_PY" "$tool" produce "$t" "$round" "$keys" "$n" ||
		fail "round $round: produce"
	total=$((total + n))
	sleep "0.$((RANDOM % 10))$((RANDOM % 10))"
	[ "$round" = 4 ] && sleep 1 # the last kill lands after a pass
	samsa_kill
	samsa_launch || fail "round $round: samsa did not start again after SIGKILL"
	"$SAMSA_PY" "$tool" check "$t" "$round" "$keys" "$n" "$total" 30 ||
		fail "round $round: not compacted to the latest values after a crash"
done
grep -c "samsa: compacted $t" "$SAMSA_LOG" | sed 's/^/compact_restart: passes that changed the log: /'

samsa_alive || fail "samsa died"
samsa_stop || fail "samsa did not stop cleanly at the end"
echo "compact_restart: ok"
