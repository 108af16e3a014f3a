# Sourced by scripts/deps.sh and tests/lib.sh: puts the Go the tests use on
# PATH.  That is the one scripts/deps.sh fetched into build/deps/go when the
# machine had none new enough, else the machine's own; Go's official
# install lives in /usr/local/go/bin, which a non-login shell may not have
# on PATH.
_go_fetched=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build/deps/go/bin
if [ -x "$_go_fetched/go" ]; then
	PATH=$_go_fetched:$PATH
elif ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
	PATH=$PATH:/usr/local/go/bin
fi
export PATH
unset _go_fetched
