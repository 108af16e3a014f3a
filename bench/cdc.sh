#!/usr/bin/env bash
# The change data capture part of `make bench` alone: samsa's table topics
# against Debezium's Postgres connector on Kafka Connect, and
# pg_recvlogical, on one Postgres (bench/cdc.py says how).  Adds to
# bench/results/results.json and rewrites bench/results/README.md.
#
#   bench/cdc.sh
#   BENCH_CDC_RATES="2000 5000 10000" bench/cdc.sh
#   BENCH_QUICK=1 bench/cdc.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_PARTS=cdc BENCH_KEEP=1 exec bench/run.sh
