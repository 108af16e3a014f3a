#!/usr/bin/env bash
# A private PostgreSQL cluster for samsa: `make run`, the tests, the benches.
#
#   scripts/pg.sh start DATADIR PORT   initdb on first use, start, wait until
#                                      it accepts connections
#   scripts/pg.sh stop DATADIR         fast shutdown, waits; fine if stopped
#   scripts/pg.sh restart DATADIR      fast restart (same port), waits
#   scripts/pg.sh status DATADIR       exit 0 when running
#   scripts/pg.sh conninfo DATADIR PORT [DBNAME]
#                                      prints a libpq conninfo
#   scripts/pg.sh createdb DATADIR PORT DBNAME
#                                      creates DBNAME unless it exists
#   scripts/pg.sh freeport             prints a free TCP port on 127.0.0.1
#
# The cluster listens on 127.0.0.1:PORT only, and on a Unix socket in
# DATADIR; local connections are trusted and the superuser is `postgres`.
# Settings: wal_level=logical (samsa's change data capture), 20 WAL senders
# and replication slots, fsync and synchronous_commit on, shared_buffers
# 256MB, max_wal_size 8GB and checkpoint_timeout 15min (at the default 1GB
# one producer made a checkpoint every ~20 s, Postgres logged "checkpoints
# are occurring too frequently", and each cost throughput).  The server log
# is DATADIR/server.log.
#
# initdb and postgres refuse to run as root: as root the cluster belongs to
# the `postgres` system user (Debian's postgresql package creates it) and
# every server command runs through `runuser -u postgres`, so DATADIR and
# each directory above it must be reachable by that user.  Not as root, the
# cluster belongs to the current user.
#
# Prints nothing but errors.  PG_BINDIR overrides where the server binaries
# are found (default: the newest /usr/lib/postgresql/*/bin).
set -euo pipefail

die() {
	echo "pg.sh: $*" >&2
	exit 1
}

usage() {
	sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

bindir() {
	if [ -n "${PG_BINDIR:-}" ]; then
		echo "$PG_BINDIR"
		return
	fi
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	[ -n "$d" ] && [ -x "$d/pg_ctl" ] ||
		die "no PostgreSQL server under /usr/lib/postgresql (run scripts/deps.sh, or set PG_BINDIR)"
	echo "$d"
}

# Runs a server binary as the cluster's owner, from / so that a working
# directory the owner cannot read does not trouble it.
as_owner() {
	if [ "$(id -u)" = 0 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		(cd / && "$@")
	fi
}

absdir() {
	mkdir -p "$1"
	(cd "$1" && pwd -P)
}

check_port() {
	case "$1" in
	'' | *[!0-9]*) die "bad port '$1'" ;;
	esac
	[ "$1" -ge 1 ] && [ "$1" -le 65535 ] || die "bad port '$1'"
}

running() {
	local bin=$1 data=$2
	[ -f "$data/PG_VERSION" ] || return 1
	as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1
}

# Port the running cluster in DATADIR listens on (postmaster.pid line 4).
running_port() {
	sed -n 4p "$1/postmaster.pid" 2>/dev/null
}

cmd_start() {
	[ $# = 2 ] || usage
	local data port bin
	check_port "$2"
	port=$2
	bin=$(bindir)
	data=$(absdir "$1")

	if [ "$(id -u)" = 0 ]; then
		id postgres >/dev/null 2>&1 ||
			die "running as root needs the 'postgres' system user (apt-get install postgresql)"
		chown postgres: "$data"
		chmod 700 "$data"
		if ! runuser -u postgres -- test -w "$data"; then
			local up=$data blocker=
			while [ "$up" != / ]; do
				up=$(dirname "$up")
				runuser -u postgres -- test -x "$up" || blocker=$up
			done
			die "user postgres (who runs the server when we are root) cannot reach $data${blocker:+: $blocker is closed to it (chmod o+x $blocker)}; or put the cluster elsewhere (make run: SAMSA_VAR=/var/tmp/samsa)"
		fi
	fi

	if running "$bin" "$data"; then
		local p
		p=$(running_port "$data")
		[ "$p" = "$port" ] ||
			die "the cluster in $data already runs on port $p, not $port"
		return 0
	fi

	if [ ! -f "$data/PG_VERSION" ]; then
		[ -z "$(ls -A "$data")" ] ||
			die "$data is neither empty nor a PostgreSQL cluster"
		local log
		log=$(mktemp)
		if ! as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust \
			-E UTF8 --no-locale >"$log" 2>&1; then
			cat "$log" >&2
			rm -f "$log"
			die "initdb failed in $data"
		fi
		rm -f "$log"
		cat >>"$data/postgresql.conf" <<-'EOF'

			# --- samsa (scripts/pg.sh) ---
			wal_level = logical
			max_wal_senders = 20
			max_replication_slots = 20
			fsync = on
			synchronous_commit = on
			shared_buffers = 256MB
			max_wal_size = 8GB
			checkpoint_timeout = 15min
			listen_addresses = '127.0.0.1'
			log_line_prefix = '%m [%p] %q%u@%d '
			log_min_messages = warning
			log_checkpoints = off
		EOF
	fi

	# A Unix socket path holds at most 107 bytes; when DATADIR is too
	# deep for ".s.PGSQL.PORT" the cluster is reached over TCP alone.
	local sockdir=$data
	if [ $((${#data} + 20)) -gt 107 ]; then
		sockdir=
	fi

	local err
	err=$(mktemp)
	if ! as_owner "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 120 \
		-o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='$sockdir'" \
		start >/dev/null 2>"$err"; then
		cat "$err" >&2
		rm -f "$err"
		tail -n 20 "$data/server.log" >&2 2>/dev/null || true
		die "could not start PostgreSQL in $data on port $port"
	fi
	rm -f "$err"
	wait_ready "$bin" "$port" ||
		die "PostgreSQL in $data started but does not accept connections on 127.0.0.1:$port"
}

wait_ready() {
	local bin=$1 port=$2 i
	for i in $(seq 1 600); do
		if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

cmd_stop() {
	[ $# = 1 ] || usage
	local data bin
	bin=$(bindir)
	[ -d "$1" ] || return 0
	data=$(cd "$1" && pwd -P)
	running "$bin" "$data" || return 0
	as_owner "$bin/pg_ctl" -D "$data" -m fast -w -t 120 stop >/dev/null ||
		die "could not stop PostgreSQL in $data"
}

cmd_restart() {
	[ $# = 1 ] || usage
	local data bin port
	bin=$(bindir)
	data=$(cd "$1" && pwd -P) || die "no cluster in $1"
	running "$bin" "$data" || die "no PostgreSQL running in $data"
	port=$(running_port "$data")
	# pg_ctl restart reuses the options of the last start (postmaster.opts).
	as_owner "$bin/pg_ctl" -D "$data" -l "$data/server.log" -m fast -w -t 120 \
		restart >/dev/null || die "could not restart PostgreSQL in $data"
	wait_ready "$bin" "$port" ||
		die "PostgreSQL in $data restarted but does not accept connections on port $port"
}

cmd_status() {
	[ $# = 1 ] || usage
	[ -d "$1" ] || return 1
	running "$(bindir)" "$(cd "$1" && pwd -P)"
}

cmd_conninfo() {
	[ $# = 2 ] || [ $# = 3 ] || usage
	check_port "$2"
	echo "host=127.0.0.1 port=$2 user=postgres dbname=${3:-postgres}"
}

cmd_createdb() {
	[ $# = 3 ] || usage
	check_port "$2"
	local db=$3 exists
	case "$db" in
	'' | *[!A-Za-z0-9_]*) die "database name '$db' must be [A-Za-z0-9_]+" ;;
	esac
	local bin
	bin=$(bindir)
	exists=$("$bin/psql" -X -q -A -t -v ON_ERROR_STOP=1 \
		"host=127.0.0.1 port=$2 user=postgres dbname=postgres" \
		-c "SELECT 1 FROM pg_database WHERE datname = '$db'") ||
		die "cannot reach PostgreSQL on 127.0.0.1:$2"
	[ "$exists" = 1 ] && return 0
	"$bin/psql" -X -q -v ON_ERROR_STOP=1 \
		"host=127.0.0.1 port=$2 user=postgres dbname=postgres" \
		-c "CREATE DATABASE \"$db\"" >/dev/null ||
		die "could not create database $db"
}

# A port nothing listens on now: the kernel's choice for an ephemeral bind,
# so two callers at once do not pick the same one.
cmd_freeport() {
	[ $# = 0 ] || usage
	local py
	for py in python3 /usr/bin/python3; do
		if command -v "$py" >/dev/null 2>&1; then
			"$py" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' && return 0
		fi
	done
	# No Python: probe random ports until a connect is refused.
	local p i
	for i in $(seq 1 200); do
		p=$((20000 + RANDOM % 10000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	die "no free port found"
}

[ $# -ge 1 ] || usage
sub=$1
shift
case "$sub" in
start) cmd_start "$@" ;;
stop) cmd_stop "$@" ;;
restart) cmd_restart "$@" ;;
status) cmd_status "$@" ;;
conninfo) cmd_conninfo "$@" ;;
createdb) cmd_createdb "$@" ;;
freeport) cmd_freeport "$@" ;;
-h | --help | help) usage ;;
*) usage ;;
esac
