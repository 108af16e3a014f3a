#!/usr/bin/env bash
# Acceptance 5, with a Postgres and a samsa of this test's own (tests/lib.sh):
#
#  1. samsa stopped (SIGTERM) and started again between produce and consume:
#     every record kcat produced with acks=all is still there, identical.
#  2. samsa killed (SIGKILL) right after acknowledging: the same.
#  3. Postgres restarted (pg_ctl restart -m fast) in the middle of a ~20 s
#     produce loop of an idempotent confluent-kafka producer: every record
#     whose delivery report was a success is in the topic at the offset the
#     report gave, nothing is there twice, no delivery failed, and records
#     produced after the restart were acknowledged (the producer carried on);
#     samsa itself survived.
#
# Environment: SAMSA_BIN, SAMSA_TEST_DIR (scratch space; default a temp dir),
# SAMSA_RESTART_RECORDS (default 20000), SAMSA_RESTART_SECONDS (default 20).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"

test_begin restart
command -v kcat >/dev/null || fail "kcat is not installed (scripts/deps.sh)"

n=${SAMSA_RESTART_RECORDS:-20000}
seconds=${SAMSA_RESTART_SECONDS:-20}

data=$here/python/kcat_data.py
client=$here/python/samsa_client.py
tool=$here/python/restart_tool.py

samsa_start "$work" || fail "could not start Postgres and samsa"
echo "restart: samsa on $SAMSA_BOOTSTRAP, Postgres on port $SAMSA_PG_PORT"
"$SAMSA_PY" "$data" gen "$n" "$work/input.txt" || fail "could not write the input"

# Produces the input into a new 2-partition topic with acks=all; prints the
# topic's name.
produce_input() {
	local topic=restart-$1-$(date +%s)-$RANDOM
	"$SAMSA_PY" "$client" create-topic "$topic" 2 >&2 || return 1
	timeout 300 kcat -P -b "$SAMSA_BOOTSTRAP" -t "$topic" -K '\t' -z lz4 \
		-H "suite=restart" -X enable.idempotence=true -X acks=all \
		-X message.timeout.ms=120000 <"$work/input.txt" >&2 || return 1
	echo "$topic"
}

consume_check() {
	local topic=$1
	# Metadata answered before kcat, which gives up on a first failure.
	"$SAMSA_PY" "$client" wait-broker 60 || return 1
	timeout 300 kcat -C -b "$SAMSA_BOOTSTRAP" -t "$topic" -o beginning -e -q \
		-f '%p\t%o\t%k\t%h\t%s\n' >"$work/out.txt" || return 1
	"$SAMSA_PY" "$data" check "$n" "$work/out.txt" "suite=restart" 2
}

# 1. A clean stop and start between produce and consume.
topic=$(produce_input stop) || fail "produce before the samsa restart"
samsa_stop || fail "samsa did not stop cleanly on SIGTERM"
samsa_launch || fail "samsa did not start again"
consume_check "$topic" || fail "records lost or changed across a samsa restart"
echo "restart: 1. samsa stopped and started between produce and consume: ok"

# 2. A crash right after the acknowledgements.
topic=$(produce_input kill) || fail "produce before the samsa crash"
samsa_kill
samsa_launch || fail "samsa did not start again after SIGKILL"
consume_check "$topic" || fail "acknowledged records lost when samsa was killed"
echo "restart: 2. samsa killed after the acknowledgements: ok"

# 3. Postgres restarted in the middle of a produce loop.
topic=restart-pg-$(date +%s)-$RANDOM
"$SAMSA_PY" "$client" create-topic "$topic" 3 || fail "create $topic"
"$SAMSA_PY" "$tool" produce "$topic" "$seconds" 250 "$work/acks.jsonl" \
	>"$work/producer.log" 2>&1 &
producer=$!
sleep "$(awk -v s="$seconds" 'BEGIN { print s / 3 }')"
kill -0 "$producer" 2>/dev/null || {
	cat "$work/producer.log" >&2
	fail "the producer loop ended before Postgres was restarted"
}
echo "restart: restarting Postgres under the producer"
pg_restart || fail "Postgres did not restart"
restarted_at=$(date +%s.%N)
prc=0
wait "$producer" || prc=$?
cat "$work/producer.log"
[ "$prc" = 0 ] || fail "the producer loop failed (status $prc)"
samsa_alive || fail "samsa died while Postgres restarted"
"$SAMSA_PY" "$tool" check "$topic" "$work/acks.jsonl" "$restarted_at" ||
	fail "acknowledged records lost across a Postgres restart"
echo "restart: 3. Postgres restarted during a produce loop: ok"

samsa_stop || fail "samsa did not stop cleanly at the end"
echo "restart: all passed"
