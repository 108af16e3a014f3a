#!/usr/bin/env bash
# `make bench`: samsa side by side with Apache Kafka 4.3.1 and Debezium 3.6
# on this machine, in one run (never a test).  See bench/README.md.
#
#   bench/run.sh                      every part (about 25 minutes)
#   BENCH_QUICK=1 bench/run.sh        a smoke run, each measurement ~1/10
#   BENCH_PARTS="produce" bench/run.sh   some parts: produce cdc sink
#   BENCH_KEEP=1 ...                  add to results.json instead of
#                                     starting it afresh
#   SAMSA_BIN=path bench/run.sh       another samsa binary (default ./samsa)
#
# Peers come from Maven Central through bench/peers.sh.  Writes
# bench/results/results.json (every raw number), bench/results/README.md
# (the tables and ratios) and PNG charts beside them.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
bench/peers.sh
[ -x "${SAMSA_BIN:-$ROOT/samsa}" ] || { echo "bench: no samsa binary (make samsa)" >&2; exit 1; }
bench/.venv/bin/python bench/bench.py
bench/.venv/bin/python bench/report.py >/dev/null
echo "bench: results in bench/results/README.md"
