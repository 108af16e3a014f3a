#!/usr/bin/env bash
# README.md keeps up with the code: its table of Kafka APIs is what
# tools/api_table.py generates from proxy/dispatch.c (`make readme` rewrites
# it), and its configuration reference names every option of proxy/config.c
# with its environment variable.  Needs no broker.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
rc=0

python3 tools/api_table.py --check README.md || rc=1

# {"name", "SAMSA_NAME", ...} lines of the option table.
options=$(sed -n 's/^\s*{"\([a-z-]*\)", "\(SAMSA_[A-Z_]*\)".*/\1 \2/p' proxy/config.c)
[ -n "$options" ] || {
	echo "readme.sh: no options found in proxy/config.c" >&2
	exit 1
}
n=0
while read -r name env; do
	n=$((n + 1))
	grep -q -- "--$name" README.md || {
		echo "readme.sh: README.md does not mention --$name (proxy/config.c)" >&2
		rc=1
	}
	grep -q -- "$env" README.md || {
		echo "readme.sh: README.md does not mention $env (proxy/config.c)" >&2
		rc=1
	}
done <<<"$options"
[ "$rc" = 0 ] && echo "readme.sh: README.md names all $n options of proxy/config.c: ok"
exit $rc
