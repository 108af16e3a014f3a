#!/usr/bin/env bash
# Installs what samsa's build, `make run` and the tests need, and nothing
# that is already there: a few seconds when everything is present.
#
#   1. Debian packages (as root; `apt-get update` once, only if one is missing)
#   2. tests/interop/.venv: confluent-kafka and pytest
#      (tests/interop/python/requirements.txt)
#   3. tests/interop/node/node_modules: kafkajs (npm ci from package-lock.json)
#   4. the Maven artifacts of tests/interop/java (kafka-clients, kafka-tools,
#      kafka-streams, Avro, JUnit, Surefire) in ~/.m2, its test classpath
#      file and its compiled main classes (samsa.seed.SeedPipeline)
#   5. the Go modules of tests/interop/go (franz-go, Sarama) in Go's module
#      cache, with a Go of 1.26 or newer (go.mod asks for it): the machine's
#      own (on PATH or in /usr/local/go), else Go's release from the Go
#      module proxy in build/deps/go (Debian 12's golang is 1.19)
#
# Steps 2-5 leave stamps in build/deps/ holding a hash of their inputs; a
# step runs again when its inputs change or its result went missing.
# SAMSA_DEPS_SKIP="apt python node java go" skips the named steps.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/go_path.sh
stamps=$root/build/deps
mkdir -p "$stamps"
skip=" ${SAMSA_DEPS_SKIP:-} "

say() {
	echo "deps: $*" >&2
}

die() {
	echo "deps: $*" >&2
	exit 1
}

skipped() {
	case "$skip" in *" $1 "*) return 0 ;; esac
	return 1
}

inputs_hash() {
	cat "$@" | sha256sum | cut -c1-64
}

stamp_ok() { # NAME HASH
	[ -f "$stamps/$1.stamp" ] && [ "$(cat "$stamps/$1.stamp")" = "$2" ]
}

# ---- 1. Debian packages ----------------------------------------------------

DEBS=(
	build-essential pkg-config clang clang-format libclang-rt-14-dev
	libevent-dev libpq-dev libavro-dev libzstd-dev liblz4-dev zlib1g-dev
	libsnappy-dev libcriterion-dev libjansson-dev libssl-dev
	librdkafka-dev # bench/ages.c
	postgresql
	kcat python3 python3-venv curl ca-certificates procps iproute2
	openssl # tests/interop/tls.sh makes its certificates
	util-linux
)

apt_step() {
	local missing=() p
	for p in "${DEBS[@]}"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
			missing+=("$p")
		fi
	done
	# Java 17 and Maven: any JDK with javac will do; Node.js: whichever
	# node is on PATH (a NodeSource build conflicts with Debian's npm).
	command -v javac >/dev/null || missing+=(default-jdk-headless)
	command -v mvn >/dev/null || missing+=(maven)
	command -v node >/dev/null || missing+=(nodejs npm)
	command -v npm >/dev/null || missing+=(npm)
	[ ${#missing[@]} = 0 ] && return 0

	if [ "$(id -u)" != 0 ]; then
		die "missing Debian packages: ${missing[*]} (install them as root: apt-get install ${missing[*]})"
	fi
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || die "apt-get update failed"
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install ${missing[*]} failed"
}

# ---- 2. Python venv ----------------------------------------------------------

python_step() {
	local venv=tests/interop/.venv req=tests/interop/python/requirements.txt h
	h=$(inputs_hash "$req" <(/usr/bin/python3 --version 2>&1))
	if stamp_ok python "$h" && [ -x "$venv/bin/python" ] &&
		"$venv/bin/python" -c 'import confluent_kafka, pytest' 2>/dev/null; then
		return 0
	fi
	say "python venv $venv"
	# Debian's interpreter, not whichever python3 comes first on PATH: the
	# venv must not depend on a per-user installation.
	if ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
		rm -rf "$venv"
		/usr/bin/python3 -m venv "$venv" || die "python3 -m venv failed (python3-venv)"
	fi
	"$venv/bin/python" -m pip install -q --disable-pip-version-check \
		-r "$req" || die "pip install -r $req failed"
	"$venv/bin/python" -c 'import confluent_kafka, pytest' ||
		die "the venv cannot import confluent_kafka and pytest"
	echo "$h" >"$stamps/python.stamp"
}

# ---- 3. Node packages --------------------------------------------------------

node_step() {
	local dir=tests/interop/node h
	h=$(inputs_hash "$dir/package.json" "$dir/package-lock.json" <(node --version))
	if stamp_ok node "$h" && [ -f "$dir/node_modules/kafkajs/package.json" ]; then
		return 0
	fi
	say "npm ci in $dir"
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
		die "npm ci in $dir failed"
	node -e "require('$root/$dir/node_modules/kafkajs')" ||
		die "kafkajs does not load"
	echo "$h" >"$stamps/node.stamp"
}

# ---- 4. Maven ---------------------------------------------------------------

java_step() {
	local dir=tests/interop/java pom=tests/interop/java/pom.xml
	local cpfile=tests/interop/java/target/test-classpath.txt h
	# The main sources count too: `make demo` runs their classes.
	h=$(inputs_hash "$pom" <(find "$dir/src/main" -type f | LC_ALL=C sort | xargs cat) \
		<(java -version 2>&1) <(mvn -v 2>&1 | head -n 1))
	if stamp_ok java "$h" && [ -s "$cpfile" ] && classpath_present "$cpfile" &&
		[ -f "$dir/target/classes/samsa/seed/SeedPipeline.class" ]; then
		return 0
	fi
	say "maven: resolving $pom"
	# Compiles the main code and the tests, writes the classpath file and
	# runs Surefire on no test, so that the JUnit provider is fetched too.
	mvn -B -q -ntp -f "$pom" test -Dtest=NoSuchTest \
		-Dsurefire.failIfNoSpecifiedTests=false >"$stamps/java.log" 2>&1 || {
		tail -n 40 "$stamps/java.log" >&2
		die "maven could not resolve or compile $pom"
	}
	[ -s "$cpfile" ] || die "maven wrote no $cpfile"
	echo "$h" >"$stamps/java.stamp"
}

# ---- 5. Go modules -----------------------------------------------------------

GO_VERSION=go1.26.8 # when the machine has no Go 1.26 or newer

go_new_enough() {
	command -v go >/dev/null &&
		go env GOVERSION | awk -F'[go.]+' '{ exit !($2 > 1 || ($2 == 1 && $3 >= 26)) }'
}

# Go's own release, as the go command fetches toolchains: a module on the
# Go module proxy, unpacked into build/deps/go.
go_fetch() {
	local arch zip=$stamps/go.zip
	case "$(uname -m)" in
	x86_64) arch=amd64 ;;
	aarch64) arch=arm64 ;;
	*) die "no Go 1.26 here, and none to fetch for $(uname -m)" ;;
	esac
	say "go: no Go 1.26 or newer here; fetching $GO_VERSION from the Go module proxy"
	curl -sSfL -o "$zip" \
		"https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-$GO_VERSION.linux-$arch.zip" ||
		die "could not fetch $GO_VERSION"
	python3 - "$zip" "$root/build/deps/go" <<'PY' || die "could not unpack $GO_VERSION"
import os, shutil, sys, zipfile
src, dest = sys.argv[1], sys.argv[2]
shutil.rmtree(dest, ignore_errors=True)
with zipfile.ZipFile(src) as z:
    for info in z.infolist():
        # golang.org/toolchain@v0.0.1-goX.Y.Z.OS-ARCH/bin/go -> bin/go
        parts = info.filename.split("/", 2)
        if info.is_dir() or len(parts) < 3:
            continue
        out = os.path.join(dest, parts[2])
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(info) as f, open(out, "wb") as g:
            shutil.copyfileobj(f, g)
        os.chmod(out, (info.external_attr >> 16) & 0o777 or 0o644)
PY
	rm -f "$zip"
	. scripts/go_path.sh
	go_new_enough || die "the fetched $GO_VERSION does not run"
}

go_step() {
	local dir=tests/interop/go h
	go_new_enough || go_fetch
	h=$(inputs_hash "$dir/go.mod" "$dir/go.sum" <(go version))
	if stamp_ok go "$h"; then
		return 0
	fi
	say "go: downloading the modules of $dir"
	(cd "$dir" && go mod download && go vet ./...) >"$stamps/go.log" 2>&1 || {
		tail -n 40 "$stamps/go.log" >&2
		die "go could not fetch or build the tests of $dir"
	}
	echo "$h" >"$stamps/go.stamp"
}

classpath_present() {
	local jar
	while IFS= read -r -d: jar || [ -n "$jar" ]; do
		[ -z "$jar" ] || [ -e "$jar" ] || return 1
	done <"$1"
}

skipped apt || apt_step
for tool in node npm java javac mvn kcat; do
	skipped apt || command -v "$tool" >/dev/null || die "$tool is still missing after the Debian step"
done
skipped python || python_step
skipped node || node_step
skipped java || java_step
skipped go || go_step
exit 0
