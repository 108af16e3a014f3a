#!/usr/bin/env bash
# Acceptance 1: kcat (librdkafka) against the broker in SAMSA_BOOTSTRAP.
#
# For each codec (none, gzip, snappy, lz4, zstd): a topic with 3 partitions
# (created with confluent-kafka's AdminClient: kcat cannot create topics),
# 100,000 records with keys and headers produced by kcat with idempotence
# on, then consumed from the beginning by kcat (no group: it assigns every
# partition).  Every record must come back exactly once, byte-identical in
# key, value and headers, at offsets 0, 1, 2, ... of its partition and in
# produce order within the partition.
#
# Environment: SAMSA_BOOTSTRAP (required), SAMSA_TEST_DIR (scratch space),
# SAMSA_KCAT_RECORDS (default 100000), SAMSA_KCAT_CODECS (default all five).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"

fail() {
	echo "kcat.sh: $*" >&2
	exit 1
}

[ -n "${SAMSA_BOOTSTRAP:-}" ] ||
	fail "SAMSA_BOOTSTRAP is not set: run through tests/run.sh interop kcat"
command -v kcat >/dev/null || fail "kcat is not installed (scripts/deps.sh)"
[ -x "$SAMSA_PY" ] || fail "no interop venv at $SAMSA_PY (scripts/deps.sh)"

n=${SAMSA_KCAT_RECORDS:-100000}
codecs=${SAMSA_KCAT_CODECS:-none gzip snappy lz4 zstd}
partitions=3
work=$(mktemp -d "${SAMSA_TEST_DIR:-${TMPDIR:-/tmp}}/kcat.XXXXXX") || fail "mktemp"
[ "${SAMSA_KEEP_TEST_DIR:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
data=$here/python/kcat_data.py
client=$here/python/samsa_client.py

"$SAMSA_PY" "$client" wait-broker 30 ||
	fail "broker $SAMSA_BOOTSTRAP does not answer"
"$SAMSA_PY" "$data" gen "$n" "$work/input.txt" || fail "could not write the input"

passed=0
failed=0
for codec in $codecs; do
	topic=kcat-$codec-$(date +%s)-$RANDOM
	headers="codec=$codec,suite=kcat"
	echo "kcat: $codec: $n records into $topic"
	ok=1
	if ! "$SAMSA_PY" "$client" create-topic "$topic" "$partitions"; then
		echo "kcat: $codec: could not create $topic" >&2
		ok=0
	fi
	if [ $ok = 1 ]; then
		start=$(date +%s.%N)
		# -K: key TAB value per line; acks=all comes with idempotence.
		if ! timeout 300 kcat -P -b "$SAMSA_BOOTSTRAP" -t "$topic" -K '\t' \
			-z "$codec" -H "codec=$codec" -H "suite=kcat" \
			-X enable.idempotence=true -X acks=all \
			-X message.timeout.ms=120000 -X linger.ms=5 \
			<"$work/input.txt" 2>"$work/$codec.produce.err"; then
			echo "kcat: $codec: producer failed:" >&2
			tail -n 20 "$work/$codec.produce.err" >&2
			ok=0
		elif grep -q 'Delivery failed\|ERROR' "$work/$codec.produce.err"; then
			echo "kcat: $codec: producer reported errors:" >&2
			tail -n 20 "$work/$codec.produce.err" >&2
			ok=0
		fi
		mid=$(date +%s.%N)
	fi
	if [ $ok = 1 ]; then
		if ! timeout 300 kcat -C -b "$SAMSA_BOOTSTRAP" -t "$topic" \
			-o beginning -e -q -f '%p\t%o\t%k\t%h\t%s\n' \
			>"$work/$codec.out" 2>"$work/$codec.consume.err"; then
			echo "kcat: $codec: consumer failed:" >&2
			tail -n 20 "$work/$codec.consume.err" >&2
			ok=0
		fi
		end=$(date +%s.%N)
	fi
	if [ $ok = 1 ] && "$SAMSA_PY" "$data" check "$n" "$work/$codec.out" \
		"$headers" "$partitions"; then
		awk -v c="$codec" -v a="$start" -v b="$mid" -v e="$end" 'BEGIN {
			printf "kcat: %s: ok (produce %.1fs, consume %.1fs)\n", c, b - a, e - b }'
		passed=$((passed + 1))
		rm -f "$work/$codec.out"
	else
		echo "kcat: $codec: FAILED"
		failed=$((failed + 1))
	fi
done

echo "kcat: $passed codecs passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
