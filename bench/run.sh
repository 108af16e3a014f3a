#!/usr/bin/env bash
# samsa's benchmarks (never a test): Kafka's own ProducerPerformance and
# ConsumerPerformance (kafka-tools, from Maven Central through the interop
# Java project's classpath) against a samsa on a Postgres of its own.
#
#   bench/run.sh                 1 KiB records, acks=all
#   BENCH_RECORDS=N bench/run.sh
#
# Writes bench/results/produce-consume.md (raw tool output plus a table)
# and prints the table.  Side-by-side runs against Apache Kafka come with
# the benchmark issue.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source tests/lib.sh
records=${BENCH_RECORDS:-1000000}
size=${BENCH_RECORD_SIZE:-1024}
cpfile=tests/interop/java/target/test-classpath.txt
[ -s "$cpfile" ] || { echo "bench: no Java classpath (run scripts/deps.sh)" >&2; exit 1; }
CP=$(cat "$cpfile")
work=$(mktemp -d /tmp/samsa-bench.XXXXXX)
chmod 755 "$work"
trap 'samsa_cleanup; rm -rf "$work"' EXIT
samsa_start "$work"
topic=bench-$(date +%s)
"$SAMSA_PY" tests/interop/python/samsa_client.py create-topic "$topic" 1

mkdir -p bench/results
out=bench/results/produce-consume.md
prod=$(java -cp "$CP" org.apache.kafka.tools.ProducerPerformance --topic "$topic" \
	--num-records "$records" --record-size "$size" --throughput -1 \
	--producer-props bootstrap.servers="$SAMSA_BOOTSTRAP" acks=all 2>/dev/null | tail -n 1)
cons=$(java -cp "$CP" org.apache.kafka.tools.ConsumerPerformance \
	--bootstrap-server "$SAMSA_BOOTSTRAP" --topic "$topic" \
	--messages "$records" --timeout 60000 2>/dev/null | tail -n 1)
{
	echo "# samsa produce/consume, $(date -u '+%F %T') UTC"
	echo
	echo "Machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB; $records records of $size B, acks=all, one partition, Kafka defaults otherwise."
	echo
	echo "ProducerPerformance:"
	echo
	echo "    $prod"
	echo
	echo "ConsumerPerformance (start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, ...):"
	echo
	echo "    $cons"
} >"$out"
cat "$out"
