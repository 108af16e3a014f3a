# Sourced by scripts/deps.sh and tests/lib.sh: Go's official install lives in
# /usr/local/go/bin, which a non-login shell may not have on PATH.
if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
	PATH=$PATH:/usr/local/go/bin
	export PATH
fi
