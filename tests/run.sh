#!/usr/bin/env bash
# samsa's test driver.
#
#   tests/run.sh [unit] [integration] [interop] [FILTER...]
#   tests/run.sh all [FILTER...]           (the default)
#
#   unit         every build/tests/unit/test_* (Criterion)
#   integration  every build/tests/integration/test_* (Criterion), each with
#                a database of its own: SAMSA_TEST_PG is its conninfo
#   interop      real clients against one ./samsa on a free port:
#                tests/interop/*.sh, pytest tests/interop/python,
#                node --test tests/interop/node, mvn test in tests/interop/java,
#                go test in tests/interop/go
#   FILTER       run only the suites whose name contains one of the words;
#                names are unit/test_x, integration/test_y, interop/kcat,
#                interop/restart, interop/python, interop/node, interop/java,
#                interop/go
#                (e.g. `tests/run.sh interop kcat`)
#
# It starts a Postgres of its own on a free port (scripts/pg.sh) in a temp
# dir, and leaves nothing running when it ends, however it ends.  Every
# suite passes or fails; the last line is "N passed, M failed" and the exit
# status is non-zero when anything failed, did not build, or a client or
# server could not start.  Nothing is skipped silently.
#
# Environment:
#   SAMSA_BUILD=build        where the binaries are (make asan: build-asan)
#   SAMSA_BIN                the samsa to test (default $SAMSA_BUILD/samsa,
#                            else ./samsa)
#   SAMSA_KEEP_TEST_DIR=1    keep the temp dir (logs, Postgres data)
#   SAMSA_EXTERNAL_BOOTSTRAP=HOST:PORT
#                            run the interop suites against a broker that is
#                            already running instead of starting samsa (to
#                            check a test against another Kafka); suites that
#                            need their own samsa still start one
#   SAMSA_SUITE_TIMEOUT      seconds per suite (default 900)
#   SAMSA_JAVA_TEST=CLASSES  interop/java runs only these test classes
#                            (Surefire's -Dtest, e.g. SeedPipelineTest)
#   SAMSA_PYTEST=EXPR        interop/python runs only the tests pytest -k EXPR
#                            picks (e.g. "groups and range")
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
BUILD=${SAMSA_BUILD:-build}
SUITE_TIMEOUT=${SAMSA_SUITE_TIMEOUT:-900}

# node test files that wait for a later issue; each is listed in the summary
# as not run, with the reason.  Remove a name here to enable its file.
NODE_PENDING=()

usage() {
	sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
}

want_unit=0
want_integration=0
want_interop=0
filters=()
for a in "$@"; do
	case "$a" in
	unit) want_unit=1 ;;
	integration) want_integration=1 ;;
	interop) want_interop=1 ;;
	all) want_unit=1 want_integration=1 want_interop=1 ;;
	-h | --help | help) usage ;;
	-*) echo "tests/run.sh: unknown option $a" >&2 && usage ;;
	*) filters+=("$a") ;;
	esac
done
if [ $((want_unit + want_integration + want_interop)) = 0 ]; then
	want_unit=1 want_integration=1 want_interop=1
fi

if [ -z "${SAMSA_BIN:-}" ]; then
	if [ -x "$ROOT/$BUILD/samsa" ]; then
		SAMSA_BIN=$ROOT/$BUILD/samsa
	else
		SAMSA_BIN=$ROOT/samsa
	fi
fi
export SAMSA_BIN SAMSA_ROOT=$ROOT
source "$ROOT/tests/lib.sh"
export SAMSA_PY SAMSA_LIB=$ROOT/tests/lib.sh

# Sanitizer runtime options, unless the caller chose their own.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if [ -z "${LSAN_OPTIONS:-}" ] && [ -f "$ROOT/tests/lsan.supp" ]; then
	export LSAN_OPTIONS=suppressions=$ROOT/tests/lsan.supp:print_suppressions=0
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/samsa-test.XXXXXX") || exit 1
chmod 755 "$TMP" # the postgres user runs the server when we are root
LOGS=$TMP/logs
mkdir -p "$LOGS"

CHILD=
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$CHILD" ]; then
		# The suite's own traps stop what it started (a restart test's
		# samsa and Postgres): give them time before the KILL.
		kill -TERM -- "-$CHILD" 2>/dev/null
		local i
		for ((i = 0; i < 150; i++)); do
			kill -0 "$CHILD" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL -- "-$CHILD" 2>/dev/null
	fi
	samsa_cleanup || echo "tests/run.sh: samsa or Postgres did not stop cleanly" >&2
	# Whatever cluster a suite left behind in the temp dir.
	local pid_file
	while IFS= read -r pid_file; do
		echo "tests/run.sh: stopping a Postgres left in ${pid_file%/postmaster.pid}" >&2
		"$ROOT/scripts/pg.sh" stop "${pid_file%/postmaster.pid}" || true
	done < <(find "$TMP" -name postmaster.pid 2>/dev/null)
	if [ "${SAMSA_KEEP_TEST_DIR:-0}" = 1 ]; then
		echo "test dir kept: $TMP"
	else
		rm -rf "$TMP"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'echo "tests/run.sh: interrupted" >&2; exit 130' INT
trap 'echo "tests/run.sh: terminated" >&2; exit 143' TERM

passed=0
failed=0
results=()

selected() {
	local name=$1 f
	[ ${#filters[@]} = 0 ] && return 0
	for f in "${filters[@]}"; do
		case "$name" in *"$f"*) return 0 ;; esac
	done
	return 1
}

record() { # PASS|FAIL NAME DETAIL
	if [ "$1" = PASS ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
	fi
	results+=("$(printf '%s %-28s %s' "$1" "$2" "$3")")
	printf '%s %-28s %s\n' "$1" "$2" "$3"
}

# Runs CMD in a session of its own (so that a timeout or an interrupt can
# end it with all its children), output to LOG; returns its status.
run_cmd() { # LOG SECONDS CMD...
	local log=$1 secs=$2 pid i rc
	shift 2
	setsid "$@" </dev/null >"$log" 2>&1 &
	pid=$!
	CHILD=$pid
	for ((i = 0; i < secs * 5; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "tests/run.sh: TIMEOUT after ${secs}s" >>"$log"
		kill -TERM -- "-$pid" 2>/dev/null
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL -- "-$pid" 2>/dev/null
	fi
	wait "$pid"
	rc=$?
	CHILD=
	return $rc
}

show_tail() { # LOG [LINES]
	echo "---- last ${2:-60} lines of $1 ----"
	tail -n "${2:-60}" "$1"
	echo "----"
}

# The summary line of a runner's log, for the report: the first kind of
# closing line found, in the order Criterion, node, Surefire, pytest, ours.
summary_of() { # LOG
	local re line
	for re in 'Synthesis:' '^# (pass|fail) ' 'Tests run: [0-9]+, Failures: [0-9]+, Errors: [0-9]+, Skipped: [0-9]+$' \
		'=+ .*[0-9]+ (passed|failed|errors?).* in [0-9.]+s' '(codecs|all) passed|: ok$'; do
		line=$(grep -aE "$re" "$1" | tail -n 2 | tr -s ' \n' ' ')
		[ -n "$line" ] && break
	done
	echo "$line" | sed 's/\x1b\[[0-9;]*m//g; s/\[====\] //; s/\[[A-Z]*\] //g; s/===* *//g' | cut -c1-110
}

# Runs one suite and records it.
suite() { # NAME SECONDS CMD...
	local name=$1 secs=$2 log start rc
	shift 2
	log=$LOGS/${name//\//_}.log
	start=$SECONDS
	run_cmd "$log" "$secs" "$@"
	rc=$?
	if [ $rc = 0 ]; then
		record PASS "$name" "($((SECONDS - start))s) $(summary_of "$log")"
	else
		local detail
		detail=$(summary_of "$log")
		[ -n "$detail" ] || detail=$(grep -av '^\s*$' "$log" | grep -av '^----' | tail -n 1 | cut -c1-100)
		record FAIL "$name" "($((SECONDS - start))s, status $rc) $detail"
		show_tail "$log"
		case "$name" in interop/*) [ "$SAMSA_STARTED" = 1 ] && samsa_log_tail 40 ;; esac
		return 1
	fi
}

# Criterion binaries of one kind, from the sources: a test source whose
# binary is missing fails (it did not build), a stale binary is ignored.
criterion_suites() { # unit|integration
	local kind=$1 src name bin db
	local srcs=(tests/"$kind"/test_*.c)
	if [ ! -e "${srcs[0]}" ]; then
		echo "note: no tests/$kind/test_*.c yet"
		return
	fi
	for src in "${srcs[@]}"; do
		name=$(basename "$src" .c)
		selected "$kind/$name" || continue
		bin=$BUILD/tests/$kind/$name
		if [ ! -x "$bin" ]; then
			record FAIL "$kind/$name" "not built: no $bin (make tests-bin)"
			continue
		fi
		if [ "$kind" = unit ]; then
			suite "$kind/$name" "$SUITE_TIMEOUT" "$bin" --ascii
		else
			db=it_${name#test_}
			if ! "$ROOT/scripts/pg.sh" createdb "$SAMSA_PG_DATA" "$SAMSA_PG_PORT" "$db"; then
				record FAIL "$kind/$name" "could not create database $db"
				continue
			fi
			SAMSA_TEST_PG=$("$ROOT/scripts/pg.sh" conninfo "$SAMSA_PG_DATA" "$SAMSA_PG_PORT" "$db") \
				SAMSA_TEST_PG_ADMIN=$("$ROOT/scripts/pg.sh" conninfo "$SAMSA_PG_DATA" "$SAMSA_PG_PORT" postgres) \
				SAMSA_TEST_DIR=$TMP/$name \
				suite "$kind/$name" "$SUITE_TIMEOUT" \
				bash -c 'mkdir -p "$SAMSA_TEST_DIR" && exec "$@"' - "$bin" --ascii --jobs 1
		fi
	done
}

# ---- interop ---------------------------------------------------------------

SAMSA_STARTED=0

start_shared_samsa() {
	if [ -n "${SAMSA_EXTERNAL_BOOTSTRAP:-}" ]; then
		export SAMSA_BOOTSTRAP=$SAMSA_EXTERNAL_BOOTSTRAP
		echo "interop: using the broker at $SAMSA_BOOTSTRAP (SAMSA_EXTERNAL_BOOTSTRAP), not samsa"
		return 0
	fi
	if samsa_launch; then
		SAMSA_STARTED=1
		echo "interop: $SAMSA_BIN on $SAMSA_BOOTSTRAP (pid $SAMSA_PID, log $SAMSA_LOG)"
		return 0
	fi
	return 1
}

# After each interop suite: the shared samsa must still be up.  If it died,
# that is a failure of its own, and a new one serves the suites left.
check_shared_samsa() { # SUITE
	[ "$SAMSA_STARTED" = 1 ] || return 0
	samsa_alive && return 0
	record FAIL "interop/samsa-alive" "samsa died during $1"
	samsa_log_tail 60
	_LIB_SAMSA_PID=
	SAMSA_STARTED=0
	start_shared_samsa || true
}

interop_suites() {
	local names=() f name missing=()
	for f in tests/interop/*.sh; do
		[ -e "$f" ] && names+=("interop/$(basename "$f" .sh)")
	done
	names+=(interop/python interop/node interop/java interop/go)
	local todo=()
	for name in "${names[@]}"; do
		selected "$name" && todo+=("$name")
	done
	[ ${#todo[@]} = 0 ] && return

	# Clients that are missing fail their suites; they are never skipped.
	command -v kcat >/dev/null || missing+=("kcat")
	[ -x "$SAMSA_PY" ] || missing+=("python venv $SAMSA_PY")
	command -v node >/dev/null || missing+=("node")
	[ -d tests/interop/node/node_modules/kafkajs ] || missing+=("kafkajs (tests/interop/node/node_modules)")
	command -v mvn >/dev/null || missing+=("mvn")
	command -v go >/dev/null || missing+=("go")
	if [ ${#missing[@]} != 0 ]; then
		echo "interop: missing clients: ${missing[*]} (run scripts/deps.sh)" >&2
	fi

	mkdir -p "$TMP/interop"
	export SAMSA_TEST_DIR=$TMP/interop
	if ! start_shared_samsa; then
		for name in "${todo[@]}"; do
			case "$name" in
			interop/restart) ;; # starts its own samsa
			*)
				record FAIL "$name" "samsa did not start (see above)"
				continue
				;;
			esac
		done
		local keep=()
		for name in "${todo[@]}"; do
			[ "$name" = interop/restart ] && keep+=("$name")
		done
		todo=("${keep[@]+"${keep[@]}"}")
	fi

	local node_files=() pend reason file skipped=()
	for file in tests/interop/node/*.test.js; do
		[ -e "$file" ] || continue
		reason=
		for pend in "${NODE_PENDING[@]}"; do
			[ "$(basename "$file")" = "${pend%%:*}" ] && reason=${pend#*:}
		done
		if [ -n "$reason" ]; then
			skipped+=("$(basename "$file") (waits for $reason)")
		else
			node_files+=("$file")
		fi
	done

	for name in "${todo[@]}"; do
		case "$name" in
		interop/python)
			suite "$name" "$SUITE_TIMEOUT" "$SAMSA_PY" -m pytest -p no:cacheprovider \
				-o console_output_style=classic -rA -s tests/interop/python \
				${SAMSA_PYTEST:+-k "$SAMSA_PYTEST"}
			;;
		interop/node)
			if [ ${#node_files[@]} = 0 ]; then
				record FAIL "$name" "no node test files"
			else
				suite "$name" "$SUITE_TIMEOUT" node --test "${node_files[@]}"
			fi
			;;
		interop/java)
			suite "$name" "$SUITE_TIMEOUT" mvn -B -ntp -f tests/interop/java/pom.xml test \
				${SAMSA_JAVA_TEST:+-Dtest="$SAMSA_JAVA_TEST"}
			;;
		interop/go)
			suite "$name" "$SUITE_TIMEOUT" bash -c 'cd tests/interop/go && exec go test -count=1 -v ./...'
			;;
		*)
			suite "$name" "$SUITE_TIMEOUT" bash "tests/interop/${name#interop/}.sh"
			;;
		esac
		check_shared_samsa "$name"
	done
	case " ${todo[*]-} " in
	*" interop/node "*)
		for f in "${skipped[@]+"${skipped[@]}"}"; do
			echo "note: interop/node: not run yet: $f"
		done
		;;
	esac

	if [ "$SAMSA_STARTED" = 1 ]; then
		if samsa_stop; then
			record PASS "interop/samsa-stop" "clean exit on SIGTERM"
		else
			record FAIL "interop/samsa-stop" "no clean exit on SIGTERM"
		fi
	fi
}

# ---- main ------------------------------------------------------------------

echo "tests/run.sh: build $BUILD, temp dir $TMP"
if [ $want_integration = 1 ] || [ $want_interop = 1 ]; then
	if ! pg_start "$TMP"; then
		record FAIL "postgres" "could not start a Postgres for the tests"
		want_integration=0 want_interop=0
	else
		echo "postgres: port $SAMSA_PG_PORT, data $SAMSA_PG_DATA"
	fi
fi

[ $want_unit = 1 ] && criterion_suites unit
[ $want_integration = 1 ] && criterion_suites integration
[ $want_interop = 1 ] && interop_suites

echo
echo "==== tests/run.sh summary ($BUILD) ===="
for r in "${results[@]+"${results[@]}"}"; do
	echo "$r"
done
if [ $((passed + failed)) = 0 ]; then
	echo "tests/run.sh: no suite ran (filters: ${filters[*]-none})" >&2
	failed=1
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
