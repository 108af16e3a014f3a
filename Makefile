# samsa: one non-recursive Makefile.
#
#   make              build ./samsa
#   make run          install what is missing, start a private Postgres under
#                     ./var and samsa on it in the foreground
#   make test         install what is missing, build, run unit, integration
#                     and interop tests against a Postgres of their own
#   make check        the quick inner loop: unit + integration tests only
#   make asan         unit + integration tests under ASan+UBSan, leak gate
#   make bench        benchmarks (bench/README.md)
#   make demo         the seed pipeline end to end (scripts/demo.sh)
#   make readme       regenerate README.md's table of Kafka APIs
#   make format / format-check

CC       ?= cc
BUILD    ?= build
PKGS     := libevent libevent_openssl openssl libpq avro-c libzstd liblz4 zlib snappy jansson
WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wvla -Werror
OPT      ?= -O2 -g
CFLAGS   += -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -MMD -MP -I. \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -pthread
TEST_LDLIBS := $(shell pkg-config --libs criterion 2>/dev/null)

VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
CFLAGS   += -DSAMSA_VERSION='"$(VERSION)"'

LIB_SRC  := $(wildcard protocol/*.c) $(wildcard storage/*.c) \
            $(filter-out proxy/main.c,$(wildcard proxy/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
MAIN_OBJ := $(BUILD)/proxy/main.o
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)
INTEG_SRC := $(wildcard tests/integration/test_*.c)
INTEG_BIN := $(INTEG_SRC:tests/integration/%.c=$(BUILD)/tests/integration/%)
TEST_SUPPORT := $(wildcard tests/support/*.c)
TEST_SUPPORT_OBJ := $(TEST_SUPPORT:%.c=$(BUILD)/%.o)

.PHONY: all run test check unit integration interop asan bench deps \
        format format-check clean fuzz demo readme

all: samsa

samsa: $(BUILD)/samsa
	cp $< $@.tmp && mv -f $@.tmp $@

$(BUILD)/samsa: $(MAIN_OBJ) $(BUILD)/libsamsa.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libsamsa.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/unit/%: tests/unit/%.c $(TEST_SUPPORT_OBJ) $(BUILD)/libsamsa.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(TEST_SUPPORT_OBJ) \
		$(BUILD)/libsamsa.a $(LDLIBS) $(TEST_LDLIBS)

$(BUILD)/tests/integration/%: tests/integration/%.c $(TEST_SUPPORT_OBJ) \
		$(BUILD)/libsamsa.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(TEST_SUPPORT_OBJ) \
		$(BUILD)/libsamsa.a $(LDLIBS) $(TEST_LDLIBS)

tests-bin: $(UNIT_BIN) $(INTEG_BIN)
.PHONY: tests-bin

deps:
	scripts/deps.sh

run: deps samsa
	scripts/run.sh

# The seed pipeline in one command: Postgres, samsa, CDC, a Streams app and
# the JDBC sink, then everything stopped again.
demo: deps samsa
	scripts/demo.sh

# README.md's API table from proxy/dispatch.c (tests/interop/readme.sh
# fails when it is out of date).
readme:
	tools/api_table.py --write README.md

# The whole suite: unit, integration and interop, on a Postgres of its own.
test: deps
	$(MAKE) samsa tests-bin
	tests/run.sh all

# The quick inner loop.
check: samsa tests-bin
	tests/run.sh unit integration

unit: tests-bin
	tests/run.sh unit

# Sanitizers: a separate build tree, leaks are errors.
# The interop suites that cover the wire protocol most widely (python, the
# kcat codecs) and the TLS and login paths run under the sanitizers too.
asan: deps
	$(MAKE) BUILD=build-asan CC=clang \
		OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
		LDFLAGS="-fsanitize=address,undefined" \
		build-asan/samsa tests-bin
	SAMSA_BUILD=build-asan tests/run.sh unit integration
	SAMSA_BUILD=build-asan tests/run.sh interop kcat python sasl tls

bench: deps samsa
	bench/run.sh

# libFuzzer on the request decoder (clang): every input is one request
# frame; tests/fuzz/corpus/ holds the seeds, build-fuzz/corpus/ what the
# fuzzer finds, build-fuzz/artifacts/ crashing inputs.  FUZZ_SECONDS=60.
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -I. -fno-omit-frame-pointer \
               -fsanitize=address,undefined -fno-sanitize-recover=undefined \
               $(shell pkg-config --cflags libzstd liblz4 zlib snappy 2>/dev/null)
FUZZ_LIBS := $(shell pkg-config --libs libzstd liblz4 zlib snappy 2>/dev/null) -lm
# The request decoder and what it needs; the Avro checker brings other libraries.
PROTO_SRC := $(filter-out protocol/avro_compat.c,$(wildcard protocol/*.c))

build-fuzz/fuzz_request: tests/fuzz/fuzz_request.c $(PROTO_SRC)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(FUZZ_LIBS)

build-fuzz/gen_corpus: tests/fuzz/gen_corpus.c $(PROTO_SRC)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $^ $(FUZZ_LIBS)

fuzz: build-fuzz/fuzz_request build-fuzz/gen_corpus
	@mkdir -p build-fuzz/corpus build-fuzz/artifacts
	build-fuzz/gen_corpus build-fuzz/corpus
	build-fuzz/fuzz_request -max_total_time=$(FUZZ_SECONDS) \
		-artifact_prefix=build-fuzz/artifacts/ -print_final_stats=1 \
		build-fuzz/corpus tests/fuzz/corpus

FORMAT_SRC = $(shell git ls-files '*.c' '*.h')
format:
	clang-format -i $(FORMAT_SRC)
format-check:
	clang-format --dry-run --Werror $(FORMAT_SRC)

clean:
	rm -rf build build-asan samsa

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
