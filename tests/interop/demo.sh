#!/usr/bin/env bash
# The seed pipeline in one command (scripts/demo.sh, `make demo`), checked:
# the demo runs with a Postgres, a samsa and a Streams app of its own on
# free ports in this test's directory; it must exit 0, the research_ave_boost
# table it prints from Postgres must give research=0 an average of 0.6519
# after admit_1/research_1 and 0.6349 after admit_2/research_2 (rounded to
# 4 places), and nothing it started may be left running.
#
# Environment: SAMSA_BIN, SAMSA_TEST_DIR (scratch space; default a temp dir),
# SAMSA_DEMO_TIMEOUT (passed on to the demo).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

fail() {
	echo "demo.sh: FAILED: $*" >&2
	exit 1
}

base=${SAMSA_TEST_DIR:-${TMPDIR:-/tmp}}
mkdir -p "$base" || fail "mkdir $base"
work=$(mktemp -d "$base/demo.XXXXXX") || fail "mktemp"
chmod 755 "$work"
[ "${SAMSA_KEEP_TEST_DIR:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT

out=$work/demo.out
rc=0
SAMSA_DEMO_DIR=$work/demo SAMSA_DEMO_PORTS=free \
	SAMSA_BIN=${SAMSA_BIN:-$root/samsa} \
	"$root/scripts/demo.sh" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
[ "$rc" = 0 ] || fail "scripts/demo.sh exited with status $rc"

# The research=0 averages of every table the demo printed, in order: the
# psql tables under "SELECT * FROM ..." lines, columns found by name.
figures=$(awk '
	/^demo: SELECT \* FROM/ { want = 1; next }
	want && /\|/ && !cols {
		n = split($0, h, "|")
		for (i = 1; i <= n; i++) {
			c = tolower(h[i]); gsub(/[ "]/, "", c)
			if (c == "research") r = i
			if (c == "ave_chance") a = i
		}
		cols = 1; next
	}
	want && cols && /^ *-+\+/ { next }
	want && cols && /\|/ {
		split($0, f, "|"); v = f[r]; gsub(/ /, "", v)
		if (v == "0") { x = f[a]; gsub(/ /, "", x); printf "%.4f\n", x }
		next
	}
	want && cols { want = 0; cols = 0; r = 0; a = 0 }
' "$out" | tr '\n' ' ' | sed 's/ $//')
echo "demo.sh: research=0 averages printed: $figures"
[ "$figures" = "0.6519 0.6349" ] ||
	fail "expected the research=0 averages 0.6519 then 0.6349, got '$figures'"

# Everything stopped: the demo's listeners closed, its Postgres down.
for what in Postgres Kafka Registry Connect; do
	port=$(sed -n "s/^demo: $what *\(127.0.0.1:\|http:\/\/127.0.0.1:\)\([0-9]*\).*/\2/p" "$out" | head -n 1)
	[ -n "$port" ] || fail "the demo did not print its $what port"
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		fail "something still listens on the demo's $what port $port"
	fi
done
if "$root/scripts/pg.sh" status "$work/demo/pg" 2>/dev/null; then
	"$root/scripts/pg.sh" stop "$work/demo/pg"
	fail "the demo left its Postgres running"
fi
echo "demo.sh: ok"
