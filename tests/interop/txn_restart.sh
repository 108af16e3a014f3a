#!/usr/bin/env bash
# Issue 4 (transactions): samsa killed (SIGKILL, as a crash) while a
# transaction is open, with a Postgres and a samsa of this test's own
# (tests/lib.sh) and librdkafka's transactional producer
# (python/txn_restart_tool.py).  Before the kill, on a 3-partition topic:
#
#   txn A  committed
#   txn O  begun, records flushed into every partition, left open
#          (transaction.timeout.ms 5 s; its producer is gone)
#   txn B  committed right before the kill (behind O in every partition)
#
# After samsa is started again:
#  1. a new transaction C commits; within 60 s a read_committed consumer
#     reaches the high watermark of every partition (O was aborted after its
#     timeout, no LSO stays stuck) and has seen A, B and C exactly once and
#     none of O, whose records read_uncommitted does see;
#  2. O's transactional id works again: a new producer with it commits D,
#     and O's records stay hidden;
#  3. a transaction P killed in PrepareCommit (its row set so while samsa
#     is down: the commit was decided, its markers not written) is
#     committed after the restart, even when a new producer with P's id
#     asks for it at once: that producer waits (CONCURRENT_TRANSACTIONS)
#     instead of reopening P, which then was aborted.
#
# Environment: SAMSA_BIN, SAMSA_PY, SAMSA_TEST_DIR (scratch space; default a
# temp dir).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"

test_begin txn_restart

tool=$here/python/txn_restart_tool.py
export PYTHONPATH=$here/python

samsa_start "$work" || fail "could not start Postgres and samsa"
echo "txn_restart: samsa on $SAMSA_BOOTSTRAP, Postgres on port $SAMSA_PG_PORT"

run=$(date +%s)-$RANDOM
t=txr-$run
"$SAMSA_PY" "$here/python/samsa_client.py" create-topic "$t" 3 || fail "create $t"

"$SAMSA_PY" "$tool" commit "$t" "txr-a-$run" A || fail "transaction A (committed)"
"$SAMSA_PY" "$tool" open "$t" "txr-o-$run" O 5000 || fail "transaction O (left open)"
"$SAMSA_PY" "$tool" commit "$t" "txr-b-$run" B || fail "transaction B (committed)"
samsa_kill
echo "txn_restart: samsa killed with transaction O open"
samsa_launch || fail "samsa did not start again after SIGKILL"

# 1. O is aborted after its timeout; A, B and C are read, O never.
"$SAMSA_PY" "$tool" commit "$t" "txr-c-$run" C || fail "transaction C after the restart"
"$SAMSA_PY" "$tool" check "$t" 60 A B C -- O ||
	fail "read_committed after a crash with an open transaction"
echo "txn_restart: 1. open transaction aborted after the restart, committed ones visible: ok"

# 2. The open transaction's id is usable again, and O stays aborted.
"$SAMSA_PY" "$tool" commit "$t" "txr-o-$run" D || fail "transaction D with O's transactional id"
"$SAMSA_PY" "$tool" check "$t" 30 A B C D -- O ||
	fail "read_committed after reusing the aborted transaction's id"
echo "txn_restart: 2. the aborted transaction's id commits again: ok"

# 3. A decided commit is completed, not reopened by a quick new producer.
"$SAMSA_PY" "$tool" open "$t" "txr-p-$run" P 600000 || fail "transaction P (left open)"
samsa_kill
psql -X -q -v ON_ERROR_STOP=1 -d "$SAMSA_PG_CONNINFO" -c \
	"UPDATE samsa.transactions SET state = 'PrepareCommit' WHERE transactional_id = 'txr-p-$run'" ||
	fail "setting P's row to PrepareCommit"
# A new producer of P's id asks as soon as samsa listens, before samsa's
# timer takes P up; then one commits E.
"$SAMSA_PY" "$tool" init-at-once "txr-p-$run" &
early=$!
samsa_launch || fail "samsa did not start again after SIGKILL"
wait $early || fail "InitProducerId for P's id as samsa starts"
"$SAMSA_PY" "$tool" commit "$t" "txr-p-$run" E || fail "transaction E with P's transactional id"
"$SAMSA_PY" "$tool" check "$t" 30 A B C D E P -- O ||
	fail "read_committed after a restart in PrepareCommit"
echo "txn_restart: 3. a commit decided before the crash is completed: ok"

samsa_alive || fail "samsa died"
samsa_stop || fail "samsa did not stop cleanly at the end"
echo "txn_restart: ok"
