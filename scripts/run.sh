#!/usr/bin/env bash
# What `make run` runs once samsa is built: a private Postgres cluster under
# ./var/pg (initdb on first use, wal_level=logical), the database `samsa` in
# it, and ./samsa on top in the foreground.  Ctrl-C (SIGINT) or SIGTERM stops
# samsa, then Postgres; Postgres is stopped too when samsa exits by itself.
#
#   scripts/run.sh [SAMSA ARGS...]     e.g. scripts/run.sh --kafka 0.0.0.0:9092
#   make run ARGS="--broker-id 2"      (the Makefile passes nothing itself)
#
# Environment:
#   SAMSA_PG_PORT   port of the private cluster on 127.0.0.1 (default 15432,
#                   away from a system Postgres on 5432/5433)
#   SAMSA_VAR       where the cluster lives (default ./var; data in $SAMSA_VAR/pg)
#   SAMSA_BIN       the samsa binary (default ./samsa)
# Other SAMSA_* variables (SAMSA_KAFKA, SAMSA_ADVERTISE, ...) reach samsa
# unchanged; --pg is set here, to the private cluster.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
port=${SAMSA_PG_PORT:-15432}
var=${SAMSA_VAR:-$root/var}
bin=${SAMSA_BIN:-$root/samsa}
pgsh=$root/scripts/pg.sh

[ -x "$bin" ] || {
	echo "run.sh: no samsa binary at $bin (make samsa)" >&2
	exit 1
}
mkdir -p "$var"
# As root the server runs as the postgres user, which must reach var/.
[ "$(id -u)" != 0 ] || chmod 755 "$var"
data=$(cd "$var" && pwd -P)/pg
# A checkout in a directory closed to that user (root's home, say): the
# cluster lives under /var/lib/samsa instead, and var/pg points at it.
if [ "$(id -u)" = 0 ] && [ ! -L "$data" ] &&
	! runuser -u postgres -- test -x "$(cd "$var" && pwd -P)"; then
	elsewhere=/var/lib/samsa/$(printf '%s' "$data" | sha256sum | cut -c1-12)
	mkdir -p "$elsewhere"
	chmod 755 /var/lib/samsa "$elsewhere"
	[ -e "$data" ] || ln -s "$elsewhere/pg" "$data"
	echo "run.sh: $var is closed to the postgres user: the cluster is in $elsewhere/pg" >&2
fi
[ ! -L "$data" ] || data=$(readlink "$data")

"$pgsh" start "$data" "$port"
pg_running=1
samsa_pid=

stop_all() {
	if [ -n "$samsa_pid" ] && kill -0 "$samsa_pid" 2>/dev/null; then
		kill -TERM "$samsa_pid" 2>/dev/null || true
		wait "$samsa_pid" 2>/dev/null || true
	fi
	samsa_pid=
	if [ "$pg_running" = 1 ]; then
		pg_running=0
		"$pgsh" stop "$data" || echo "run.sh: Postgres in $data did not stop" >&2
	fi
}
trap stop_all EXIT
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM

"$pgsh" createdb "$data" "$port" samsa
conninfo=$("$pgsh" conninfo "$data" "$port" samsa)
echo "run.sh: Postgres on 127.0.0.1:$port (data $data, log $data/server.log)" >&2
echo "run.sh: $bin --pg '$conninfo' $*" >&2

# In the background so that this shell can act on signals while samsa runs
# (a foreground child would hold a SIGTERM back until it exited).
"$bin" --pg "$conninfo" "$@" &
samsa_pid=$!
rc=0
wait "$samsa_pid" || rc=$?
samsa_pid=
[ "$rc" = 0 ] || echo "run.sh: samsa exited with status $rc" >&2
exit "$rc"
