#!/usr/bin/env bash
# The seed pipeline (data/seed-demo in the design notes: Postgres -> Debezium
# -> Kafka -> KSQL -> JDBC sink -> Postgres) in one command, on samsa:
#
#   make demo            (or scripts/demo.sh once ./samsa is built)
#
# It follows the seed README's steps, printing each by the seed's name:
#   1. bring up the environment: a private Postgres and samsa, started by
#      scripts/run.sh in the background (as `make run` does)
#   2. load data into Postgres: database `students`, tables admission and
#      research as the seed creates them, admit_1 / research_1 by \copy
#   3. Postgres as a source to Kafka: the seed's postgres-source.json
#      POSTed to samsa's Connect port (host, port and registry URL adjusted):
#      topics dbserver1.public.admission / .research, Avro values
#   4. the KSQL tables: the seed's statements as a Kafka Streams app
#      (samsa.seed.SeedPipeline in tests/interop/java), writing the topic
#      RESEARCH_AVE_BOOST
#   5. sink the table back to Postgres: the seed's postgres-sink.json
#      POSTed; prints the research_ave_boost table (research=0: 0.6519)
#   6. add new data: admit_2 / research_2 by \copy; prints the table again
#      (research=0: 0.6349)
# and then stops everything it started, also on Ctrl-C or a failure.
#
# Ports: samsa's usual ones (Kafka 9092, Schema Registry 8081, Connect 8083)
# and Postgres on 15432 when nothing listens there, else free ones; the
# ports used are printed.  SAMSA_DEMO_PORTS=free takes free ports for all.
# Listeners bind 127.0.0.1 only.
#
# Environment:
#   SAMSA_DEMO_DIR        where the demo's Postgres cluster and logs go
#                         (default ./var/demo; emptied at the start, kept
#                         afterwards for a look at the logs)
#   SAMSA_DEMO_PORTS      "free": free ports for everything
#   SAMSA_DEMO_TIMEOUT    seconds to wait for each step (default 180)
#   SAMSA_BIN             the samsa binary (default ./samsa)
# Exit status 0 when both figures came out as the seed README says.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
data=$root/tests/data/seed-demo
dir=${SAMSA_DEMO_DIR:-$root/var/demo}
bin=${SAMSA_BIN:-$root/samsa}
step_timeout=${SAMSA_DEMO_TIMEOUT:-180}
pgsh=$root/scripts/pg.sh
java_dir=$root/tests/interop/java
cpfile=$java_dir/target/test-classpath.txt
classes=$java_dir/target/classes

current_step="start-up"
run_pid=
streams_pid=
pg_data=

say() {
	echo "demo: $*"
}

# Fails the demo: names the step that failed and the log to read.
fail() { # MESSAGE [LOG]
	echo >&2
	echo "demo: FAILED in step \"$current_step\": $1" >&2
	if [ -n "${2:-}" ]; then
		echo "demo: its log is $2; the last lines:" >&2
		tail -n 25 "$2" 2>/dev/null | sed 's/^/    /' >&2
	fi
	exit 1
}

step_no=0
step() { # TITLE
	step_no=$((step_no + 1))
	current_step=$1
	echo
	echo "==> [$step_no/6] $1"
}

# SIGTERM to PID, SIGKILL after SECONDS, then reaps it.  An exited child
# stays a zombie until waited for (and kill -0 still finds it), so the loop
# reads its state from /proc.
stop_pid() { # PID SECONDS
	local i state
	kill -TERM "$1" 2>/dev/null
	for ((i = 0; i < $2 * 5; i++)); do
		state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
		[ -n "$state" ] && [ "$state" != Z ] || break
		sleep 0.2
	done
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

stop_all() {
	local rc=$?
	trap - EXIT
	# A second Ctrl-C does not cut the clean-up short (it is bounded).
	trap "" INT TERM HUP
	if [ -n "$streams_pid" ] && kill -0 "$streams_pid" 2>/dev/null; then
		say "stopping the Streams app (pid $streams_pid)"
		stop_pid "$streams_pid" 30
	fi
	streams_pid=
	if [ -n "$run_pid" ] && kill -0 "$run_pid" 2>/dev/null; then
		say "stopping samsa and Postgres (scripts/run.sh, pid $run_pid)"
		# run.sh stops samsa, then Postgres, on SIGTERM.
		stop_pid "$run_pid" 60
	fi
	run_pid=
	# Whatever outlived run.sh (a KILL above): the cluster itself.
	if [ -n "$pg_data" ] && "$pgsh" status "$pg_data" 2>/dev/null; then
		"$pgsh" stop "$pg_data" || echo "demo: Postgres in $pg_data did not stop" >&2
	fi
	if [ "$rc" = 0 ]; then
		say "done; logs are in $dir"
	else
		echo "demo: stopped everything it started; logs are in $dir" >&2
	fi
	exit "$rc"
}
trap stop_all EXIT
trap 'echo; echo "demo: interrupted" >&2; exit 130' INT
trap 'echo "demo: terminated" >&2; exit 143' TERM HUP

# ---- tools ------------------------------------------------------------------

for tool in python3 curl kcat java psql setsid; do
	command -v "$tool" >/dev/null ||
		fail "$tool is not installed (make deps installs what the demo needs)"
done
[ -x "$bin" ] || fail "no samsa binary at $bin (make samsa)"
for f in admit_1.csv admit_2.csv research_1.csv research_2.csv \
	postgres-source.json postgres-sink.json; do
	[ -f "$data/$f" ] || fail "missing $data/$f"
done

# A port: the default when nothing listens on it, else a free one.
pick_port() { # DEFAULT
	if [ "${SAMSA_DEMO_PORTS:-}" != free ] &&
		! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
		echo "$1"
	else
		"$pgsh" freeport
	fi
}

alive() { # PID
	[ -n "$1" ] && kill -0 "$1" 2>/dev/null
}

# Polls CMD once a second until it succeeds; fails the step after the
# timeout, or as soon as samsa or the Streams app has died.
wait_for() { # WHAT CMD...
	local what=$1 i
	shift
	for ((i = 0; i < step_timeout; i++)); do
		"$@" 2>/dev/null && return 0
		alive "$run_pid" || fail "samsa (scripts/run.sh) exited while waiting for $what" "$dir/samsa.log"
		if [ -n "$streams_pid" ] && ! alive "$streams_pid"; then
			fail "the Streams app exited while waiting for $what" "$dir/streams.log"
		fi
		sleep 1
	done
	return 1
}

# ---- 1. the environment -----------------------------------------------------

step "Bring up the entire environment: Postgres and samsa"
if [ -e "$dir/pg" ]; then
	# A cluster from an earlier run: stopped and thrown away.
	"$pgsh" stop "$dir/pg" 2>/dev/null || true
	[ ! -L "$dir/pg" ] || rm -rf "$(readlink "$dir/pg")"
fi
rm -rf "$dir" || fail "cannot empty $dir"
mkdir -p "$dir" || fail "cannot create $dir"

pg_port=$(pick_port 15432)
kafka_port=$(pick_port 9092)
registry_port=$(pick_port 8081)
connect_port=$(pick_port 8083)
bootstrap=127.0.0.1:$kafka_port
registry_url=http://127.0.0.1:$registry_port
connect_url=http://127.0.0.1:$connect_port
pg_conn="host=127.0.0.1 port=$pg_port user=postgres"

# In a session of its own, so that a Ctrl-C reaches only this script, which
# then stops the Streams app while samsa still serves it, and samsa after.
SAMSA_VAR=$dir SAMSA_PG_PORT=$pg_port SAMSA_BIN=$bin \
	setsid "$root/scripts/run.sh" --kafka "$bootstrap" --advertise "$bootstrap" \
	--registry "127.0.0.1:$registry_port" --connect "127.0.0.1:$connect_port" \
	</dev/null >"$dir/samsa.log" 2>&1 &
run_pid=$!
pg_data=$dir/pg

up() {
	(exec 3<>"/dev/tcp/127.0.0.1/$kafka_port") &&
		(exec 3<>"/dev/tcp/127.0.0.1/$registry_port") &&
		(exec 3<>"/dev/tcp/127.0.0.1/$connect_port")
}
wait_for "samsa's listeners" up ||
	fail "samsa does not listen on $bootstrap, :$registry_port and :$connect_port after ${step_timeout}s" "$dir/samsa.log"
[ ! -L "$dir/pg" ] || pg_data=$(readlink "$dir/pg")
say "Postgres   127.0.0.1:$pg_port (data $pg_data, log $pg_data/server.log)"
say "Kafka      $bootstrap"
say "Registry   $registry_url"
say "Connect    $connect_url"
say "samsa log  $dir/samsa.log"

# ---- 2. data into Postgres --------------------------------------------------

psql_students() {
	psql -X -q -v ON_ERROR_STOP=1 "$pg_conn dbname=students" "$@"
}

step "Loading data into Postgres"
"$pgsh" createdb "$pg_data" "$pg_port" students >>"$dir/psql.log" 2>&1 ||
	fail "could not create the database students" "$dir/psql.log"
say "CREATE DATABASE students; tables admission and research"
psql_students >>"$dir/psql.log" 2>&1 <<'SQL' || fail "could not create the tables" "$dir/psql.log"
CREATE TABLE admission
(student_id INTEGER, gre INTEGER, toefl INTEGER, cpga DOUBLE PRECISION, admit_chance DOUBLE PRECISION,
CONSTRAINT student_id_pk PRIMARY KEY (student_id));
CREATE TABLE research
(student_id INTEGER, rating INTEGER, research INTEGER,
PRIMARY KEY (student_id));
SQL

load() { # TABLE FILE
	say "\\copy $1 FROM '$2' DELIMITER ',' CSV HEADER"
	psql_students -c "\\copy $1 FROM '$data/$2' DELIMITER ',' CSV HEADER" \
		>>"$dir/psql.log" 2>&1 || fail "\\copy $1 from $2 failed" "$dir/psql.log"
}
load admission admit_1.csv
load research research_1.csv

# ---- 3. the source connector ------------------------------------------------

# The seed's connector file with only what differs here replaced.
connector_json() { # FILE KEY=VALUE...
	python3 - "$@" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
for kv in sys.argv[2:]:
    k, v = kv.split("=", 1)
    doc["config"][k] = v
print(json.dumps(doc, indent=2))
PY
}

post_connector() { # FILE NAME
	local code
	code=$(curl -sS -o "$dir/$2.response" -w '%{http_code}' -X POST \
		-H "Accept:application/json" -H "Content-Type: application/json" \
		--data @"$1" "$connect_url/connectors" 2>"$dir/$2.curl.log") ||
		fail "POST $connect_url/connectors failed" "$dir/$2.curl.log"
	[ "$code" = 201 ] ||
		fail "POST $connect_url/connectors for $2 answered HTTP $code: $(cat "$dir/$2.response")"
}

# The end offset of partition 0 of TOPIC, or nothing when there is no such
# topic.
end_offset() { # TOPIC
	kcat -b "$bootstrap" -Q -t "$1:0:-1" 2>/dev/null |
		sed -n "s/.*\[0\].*offset \([0-9-]*\).*/\1/p" | head -n 1
}

has_records() { # TOPIC N
	local n
	n=$(end_offset "$1")
	[ -n "$n" ] && [ "$n" -ge "$2" ]
}

step "Use Postgres database as a source to Kafka"
connector_json "$data/postgres-source.json" \
	"database.hostname=127.0.0.1" "database.port=$pg_port" \
	"database.history.kafka.bootstrap.servers=$bootstrap" \
	"value.converter.schema.registry.url=$registry_url" \
	>"$dir/postgres-source.json" || fail "could not rewrite postgres-source.json"
say "curl -X POST --data @postgres-source.json $connect_url/connectors"
say "  (the seed's file; database.hostname, database.port and the registry URL changed: $dir/postgres-source.json)"
post_connector "$dir/postgres-source.json" postgres-source
say "connectors: $(curl -sS "$connect_url/connectors/")"
wait_for "the snapshot of admission" has_records dbserver1.public.admission 300 ||
	fail "dbserver1.public.admission does not have the 300 rows of admit_1 after ${step_timeout}s (status: $(curl -sS "$connect_url/connectors/postgres-source/status" 2>&1))" "$dir/samsa.log"
wait_for "the snapshot of research" has_records dbserver1.public.research 300 ||
	fail "dbserver1.public.research does not have the 300 rows of research_1 after ${step_timeout}s" "$dir/samsa.log"
say "topics: dbserver1.public.admission ($(end_offset dbserver1.public.admission) records), dbserver1.public.research ($(end_offset dbserver1.public.research) records)"
say "schemas in the registry: $(curl -sS "$registry_url/subjects")"

# ---- 4. the KSQL part, as a Kafka Streams app -------------------------------

step "Create tables in KSQL (the seed's statements as a Kafka Streams app)"
main_src=$java_dir/src/main/java/samsa/seed
[ -d "$main_src" ] ||
	fail "no Streams app: $main_src is missing"
[ -s "$cpfile" ] ||
	fail "no $cpfile: run make deps (it fetches the Streams app's libraries)"
# Compiled again when a source or the pom changed since the last compile.
stamp=$classes/samsa/seed/.compiled
if [ ! -f "$classes/samsa/seed/SeedPipeline.class" ] || [ ! -f "$stamp" ] ||
	[ -n "$(find "$main_src" "$java_dir/pom.xml" -newer "$stamp" 2>/dev/null | head -n 1)" ]; then
	say "compiling it (mvn compile in tests/interop/java; log $dir/mvn.log)"
	mvn -B -q -ntp -f "$java_dir/pom.xml" compile >"$dir/mvn.log" 2>&1 ||
		fail "mvn could not compile the Streams app" "$dir/mvn.log"
	touch "$stamp"
fi
say "java samsa.seed.SeedPipeline --bootstrap $bootstrap --registry $registry_url (log $dir/streams.log)"
java -cp "$(cat "$cpfile"):$classes" samsa.seed.SeedPipeline \
	--bootstrap "$bootstrap" --registry "$registry_url" \
	--app-id "samsa-demo-seed" --guarantee at_least_once \
	--state-dir "$dir/streams-state" </dev/null >"$dir/streams.log" 2>&1 &
streams_pid=$!
say "ADMISSION_SRC, RESEARCH_SRC -> ADMISSION, RESEARCH -> RESEARCH_BOOST (left join) -> RESEARCH_AVE_BOOST (average by research)"
wait_for "RESEARCH_AVE_BOOST" has_records RESEARCH_AVE_BOOST 1 ||
	fail "the topic RESEARCH_AVE_BOOST has no records after ${step_timeout}s" "$dir/streams.log"
say "topic RESEARCH_AVE_BOOST: $(end_offset RESEARCH_AVE_BOOST) records so far"

# ---- 5. the sink connector --------------------------------------------------

# The sink's table and its columns as the sink named them (quoted or not).
sink_table=
sink_research=
sink_ave=
find_sink_table() {
	local row
	row=$(psql_students -A -t -F ' ' -c "
		SELECT format('%I.%I', t.table_schema, t.table_name),
		       (SELECT quote_ident(column_name) FROM information_schema.columns c
		         WHERE c.table_schema = t.table_schema AND c.table_name = t.table_name
		           AND lower(column_name) = 'research'),
		       (SELECT quote_ident(column_name) FROM information_schema.columns c
		         WHERE c.table_schema = t.table_schema AND c.table_name = t.table_name
		           AND lower(column_name) = 'ave_chance')
		  FROM information_schema.tables t
		 WHERE lower(t.table_name) = 'research_ave_boost'
		   AND t.table_schema NOT IN ('pg_catalog', 'information_schema')
		 LIMIT 1") || return 1
	read -r sink_table sink_research sink_ave <<<"$row"
	[ -n "$sink_table" ] && [ -n "$sink_research" ] && [ -n "$sink_ave" ]
}

# The seed's query: the average admit chance of students without research,
# rounded to 4 places.
ave_no_research() {
	psql_students -A -t -c "SELECT round(CAST($sink_ave AS numeric), 4)
		FROM $sink_table WHERE CAST($sink_research AS text) = '0'"
}

is_ave() { # EXPECTED
	[ "$(ave_no_research)" = "$1" ]
}

show_table() {
	say "SELECT * FROM $sink_table ORDER BY $sink_research;"
	psql_students -c "SELECT * FROM $sink_table ORDER BY $sink_research" |
		sed 's/^/    /'
}

# Waits for the seed's published figure in the sink's table, then shows it.
expect_ave() { # EXPECTED PERCENT
	if ! wait_for "research=0 at $1" is_ave "$1"; then
		show_table
		fail "the average admit chance without research is '$(ave_no_research)', not $1 ($2 in the seed README), after ${step_timeout}s" "$dir/samsa.log"
	fi
	show_table
	say "students without research experience: average admit chance $(ave_no_research) (the seed README: $2)"
}

step "Add a connector to sink a KSQL table back to Postgres"
connector_json "$data/postgres-sink.json" \
	"connection.url=jdbc:postgresql://127.0.0.1:$pg_port/students?user=postgres&password=postgres" \
	"value.converter.schema.registry.url=$registry_url" \
	>"$dir/postgres-sink.json" || fail "could not rewrite postgres-sink.json"
say "curl -X POST --data @postgres-sink.json $connect_url/connectors"
say "  (the seed's file; connection.url and the registry URL changed: $dir/postgres-sink.json)"
post_connector "$dir/postgres-sink.json" postgres-sink
say "connectors: $(curl -sS "$connect_url/connectors/")"
wait_for "the sink's table research_ave_boost in students" find_sink_table ||
	fail "no table research_ave_boost in the database students after ${step_timeout}s (sink status: $(curl -sS "$connect_url/connectors/postgres-sink/status" 2>&1))" "$dir/samsa.log"
expect_ave 0.6519 65.19%

# ---- 6. more data -----------------------------------------------------------

step "Add some new data to the admission and research tables in Postgres"
load admission admit_2.csv
load research research_2.csv
expect_ave 0.6349 63.49%

echo
say "the seed pipeline ran on samsa: 65.19% then 63.49%, as the seed README says"
exit 0
