# shellcheck shell=bash
# Bash functions for tests that run processes of their own: a Postgres and a
# samsa that the test may stop, restart and kill without disturbing the
# shared ones that tests/run.sh started.  Source it (tests/run.sh exports its
# path as SAMSA_LIB):
#
#   source "$SAMSA_LIB"
#   trap samsa_cleanup EXIT
#   samsa_start "$SAMSA_TEST_DIR/mytest"   # own Postgres + own samsa
#   ... clients use $SAMSA_BOOTSTRAP ...
#   samsa_restart                          # same port, same database
#   pg_restart                             # pg_ctl restart -m fast
#
# Functions (each returns non-zero and says why on stderr when it fails):
#   wait_port HOST PORT [SECONDS]  until something accepts on HOST:PORT
#   pg_start DIR                   Postgres in DIR/pg on a free port, with a
#                                  database `samsa`; sets SAMSA_PG_DATA,
#                                  SAMSA_PG_PORT, SAMSA_PG_CONNINFO
#   pg_stop / pg_restart
#   samsa_launch [ARGS...]         $SAMSA_BIN on free ports against
#                                  SAMSA_PG_CONNINFO (the same ports again on
#                                  a restart); sets SAMSA_PID, SAMSA_BOOTSTRAP
#                                  (Kafka), SAMSA_REGISTRY_URL and
#                                  SAMSA_CONNECT_URL (http://127.0.0.1:P);
#                                  log appended to SAMSA_LOG; extra ARGS go
#                                  to samsa
#   samsa_start DIR [ARGS...]      pg_start DIR, then samsa_launch ARGS
#   samsa_stop                     SIGTERM, wait (SIGKILL after 30 s: failure)
#   samsa_kill                     SIGKILL, as a crash would
#   samsa_restart                  samsa_stop, then samsa_launch again
#   samsa_alive                    is our samsa still running?
#   samsa_cleanup                  stop samsa and Postgres; safe in a trap
#   samsa_log_tail [LINES]         the end of the samsa log, to stderr
#   test_begin NAME                the start of a script with a samsa of its
#                                  own: defines fail MESSAGE (says NAME.sh
#                                  failed, shows the log's tail, exits 1),
#                                  checks the interop venv and samsa binary,
#                                  makes $work, and traps EXIT to run the
#                                  script's on_cleanup (if it defines one),
#                                  samsa_cleanup and remove $work (kept
#                                  with SAMSA_KEEP_TEST_DIR=1)
#
# Variables read: SAMSA_ROOT (repository; default: found from this file),
# SAMSA_BIN (default $SAMSA_ROOT/samsa), SAMSA_PY (the interop venv's python).
# The processes a shell started are tracked in that shell's own _LIB_*
# variables, never in the environment, so a test run under tests/run.sh can
# neither reuse nor stop the shared Postgres and samsa of its parent.
# SAMSA_BOOTSTRAP and SAMSA_PG_CONNINFO are exported for the clients; the
# SAMSA_PG_DATA, SAMSA_PG_PORT, SAMSA_PORT, SAMSA_PID and SAMSA_LOG that the
# functions set are for reading only.

SAMSA_ROOT=${SAMSA_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
SAMSA_BIN=${SAMSA_BIN:-$SAMSA_ROOT/samsa}
SAMSA_PY=${SAMSA_PY:-$SAMSA_ROOT/tests/interop/.venv/bin/python}
SAMSA_PGSH=$SAMSA_ROOT/scripts/pg.sh
export SAMSA_ROOT SAMSA_BIN SAMSA_PY
. "$SAMSA_ROOT/scripts/go_path.sh"

_lib_say() {
	echo "lib.sh: $*" >&2
}

_LIB_PG_DATA=
_LIB_PG_PORT=
_LIB_SAMSA_PID=
_LIB_SAMSA_PORT=
_LIB_REGISTRY_PORT=
_LIB_CONNECT_PORT=
_LIB_SAMSA_LOG=
_LIB_SAMSA_ARGS=()

wait_port() {
	local host=$1 port=$2 secs=${3:-30} i
	for ((i = 0; i < secs * 10; i++)); do
		if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	_lib_say "nothing accepts connections on $host:$port after ${secs}s"
	return 1
}

freeport() {
	"$SAMSA_PGSH" freeport
}

pg_start() {
	local dir=${1:-}
	[ -n "$dir" ] || {
		_lib_say "pg_start: no directory"
		return 1
	}
	if [ -n "$_LIB_PG_DATA" ]; then
		_lib_say "pg_start: this shell already runs a Postgres in $_LIB_PG_DATA"
		return 1
	fi
	mkdir -p "$dir" || return 1
	# The server may run as the postgres user (when we are root): it must
	# be able to reach its data directory.
	chmod 755 "$dir" || return 1
	local data port
	data=$(cd "$dir" && pwd -P)/pg
	port=$(freeport) || return 1
	"$SAMSA_PGSH" start "$data" "$port" || return 1
	_LIB_PG_DATA=$data
	_LIB_PG_PORT=$port
	_LIB_SAMSA_LOG=${data%/pg}/samsa.log
	"$SAMSA_PGSH" createdb "$data" "$port" samsa || return 1
	SAMSA_PG_DATA=$data
	SAMSA_PG_PORT=$port
	SAMSA_PG_CONNINFO=$("$SAMSA_PGSH" conninfo "$data" "$port" samsa)
	export SAMSA_PG_CONNINFO
}

pg_stop() {
	[ -n "$_LIB_PG_DATA" ] || return 0
	local data=$_LIB_PG_DATA
	_LIB_PG_DATA=
	"$SAMSA_PGSH" stop "$data"
}

pg_restart() {
	[ -n "$_LIB_PG_DATA" ] || {
		_lib_say "pg_restart: no Postgres of this shell's (pg_start first)"
		return 1
	}
	"$SAMSA_PGSH" restart "$_LIB_PG_DATA"
}

samsa_alive() {
	[ -n "$_LIB_SAMSA_PID" ] && kill -0 "$_LIB_SAMSA_PID" 2>/dev/null
}

samsa_log_tail() {
	local n=${1:-40}
	if [ -n "$_LIB_SAMSA_LOG" ] && [ -f "$_LIB_SAMSA_LOG" ]; then
		echo "---- last $n lines of $_LIB_SAMSA_LOG ----" >&2
		tail -n "$n" "$_LIB_SAMSA_LOG" >&2
		echo "----" >&2
	fi
}

samsa_launch() {
	if [ ! -x "$SAMSA_BIN" ]; then
		_lib_say "no samsa binary at $SAMSA_BIN (make samsa)"
		return 1
	fi
	[ -n "$_LIB_PG_DATA" ] || {
		_lib_say "samsa_launch: no Postgres of this shell's (pg_start first)"
		return 1
	}
	if samsa_alive; then
		_lib_say "samsa_launch: samsa already runs as pid $_LIB_SAMSA_PID"
		return 1
	fi
	# Every listener on a port of its own, so that several samsas (the
	# shared one of tests/run.sh, a restart test's) never collide.
	if [ -z "$_LIB_SAMSA_PORT" ]; then
		_LIB_SAMSA_PORT=$(freeport) || return 1
		_LIB_REGISTRY_PORT=$(freeport) || return 1
		_LIB_CONNECT_PORT=$(freeport) || return 1
	fi
	_LIB_SAMSA_ARGS=("$@")
	SAMSA_PORT=$_LIB_SAMSA_PORT
	SAMSA_LOG=$_LIB_SAMSA_LOG
	SAMSA_BOOTSTRAP=127.0.0.1:$SAMSA_PORT
	SAMSA_REGISTRY_URL=http://127.0.0.1:$_LIB_REGISTRY_PORT
	SAMSA_CONNECT_URL=http://127.0.0.1:$_LIB_CONNECT_PORT
	export SAMSA_BOOTSTRAP SAMSA_REGISTRY_URL SAMSA_CONNECT_URL
	echo "=== $(date '+%F %T') $SAMSA_BIN --kafka $SAMSA_BOOTSTRAP $*" >>"$SAMSA_LOG"
	"$SAMSA_BIN" --pg "$SAMSA_PG_CONNINFO" --kafka "$SAMSA_BOOTSTRAP" \
		--advertise "$SAMSA_BOOTSTRAP" \
		--registry "127.0.0.1:$_LIB_REGISTRY_PORT" \
		--connect "127.0.0.1:$_LIB_CONNECT_PORT" \
		"$@" </dev/null >>"$SAMSA_LOG" 2>&1 &
	_LIB_SAMSA_PID=$!
	SAMSA_PID=$_LIB_SAMSA_PID
	local i rc
	for ((i = 0; i < 300; i++)); do
		if ! samsa_alive; then
			rc=0
			wait "$_LIB_SAMSA_PID" 2>/dev/null || rc=$?
			_lib_say "samsa exited (status $rc) before listening on $SAMSA_BOOTSTRAP"
			samsa_log_tail
			_LIB_SAMSA_PID=
			return 1
		fi
		# The Kafka port is bound before the store loads; the registry
		# and Connect ports open after it: ready means all three answer.
		if (exec 3<>"/dev/tcp/127.0.0.1/$SAMSA_PORT") 2>/dev/null &&
			(exec 3<>"/dev/tcp/127.0.0.1/$_LIB_REGISTRY_PORT") 2>/dev/null &&
			(exec 3<>"/dev/tcp/127.0.0.1/$_LIB_CONNECT_PORT") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	_lib_say "samsa (pid $_LIB_SAMSA_PID) does not listen on $SAMSA_BOOTSTRAP, :$_LIB_REGISTRY_PORT and :$_LIB_CONNECT_PORT after 30s"
	samsa_log_tail
	return 1
}

samsa_start() {
	local dir=${1:-}
	shift || true
	pg_start "$dir" || return 1
	samsa_launch "$@"
}

# Stops our samsa with SIGTERM.  Fails when it needed SIGKILL or exited
# with a non-zero status: a clean stop is part of what is tested.
samsa_stop() {
	[ -n "$_LIB_SAMSA_PID" ] || return 0
	local pid=$_LIB_SAMSA_PID rc=0 i
	_LIB_SAMSA_PID=
	SAMSA_PID=
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid" 2>/dev/null || rc=$?
		_lib_say "samsa (pid $pid) had already exited (status $rc)"
		samsa_log_tail
		return 1
	fi
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		_lib_say "samsa (pid $pid) ignored SIGTERM for 30s: killed"
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		samsa_log_tail
		return 1
	fi
	wait "$pid" 2>/dev/null || rc=$?
	if [ "$rc" != 0 ]; then
		_lib_say "samsa exited with status $rc on SIGTERM"
		samsa_log_tail
		return 1
	fi
	return 0
}

# SIGKILL, as a crash would do it; returns once the process is gone.
samsa_kill() {
	[ -n "$_LIB_SAMSA_PID" ] || return 0
	kill -KILL "$_LIB_SAMSA_PID" 2>/dev/null
	wait "$_LIB_SAMSA_PID" 2>/dev/null
	_LIB_SAMSA_PID=
	SAMSA_PID=
	return 0
}

samsa_restart() {
	samsa_stop || return 1
	samsa_launch "${_LIB_SAMSA_ARGS[@]}"
}

samsa_cleanup() {
	local rc=0
	if [ -n "$_LIB_SAMSA_PID" ]; then
		samsa_stop || rc=1
	fi
	pg_stop || rc=1
	return $rc
}

test_begin() {
	_LIB_TEST=$1
	[ -x "$SAMSA_PY" ] || fail "no interop venv at $SAMSA_PY (scripts/deps.sh)"
	[ -x "$SAMSA_BIN" ] || fail "no samsa binary at $SAMSA_BIN"
	work=$(mktemp -d "${SAMSA_TEST_DIR:-${TMPDIR:-/tmp}}/$1.XXXXXX") ||
		fail "mktemp"
	trap _lib_test_end EXIT
}

fail() {
	echo "${_LIB_TEST:-test}.sh: FAILED: $*" >&2
	samsa_log_tail 60
	exit 1
}

_lib_test_end() {
	if declare -F on_cleanup >/dev/null; then
		on_cleanup
	fi
	samsa_cleanup ||
		echo "$_LIB_TEST.sh: cleanup: samsa or Postgres did not stop cleanly" >&2
	[ "${SAMSA_KEEP_TEST_DIR:-0}" = 1 ] || rm -rf "$work"
}
