# Makefile - builds libonyx, the onyx executable and the tests.
#
#   make            release build: build/onyx, build/libonyx.a, build/libonyx.so
#   make run        build, then serve the bundled demo models
#   make test       install test dependencies, build release + ASan/UBSan, run every suite
#   make asan       the sanitizer build in build/asan/
#
# ISA-specific kernels are files named *_avx2.c / *_avx512.c / *_amx.c in
# src/kernels/; only those get the ISA flags, and src/kernels/dispatch.c picks
# among them at run time, so the binary runs on any x86-64.

CC      ?= gcc
BUILD   ?= build
OPT     ?= -O2
SAN     ?=
VERSION := $(shell sed -n 's/^#define ONYX_VERSION "\(.*\)"/\1/p' include/onyx.h)
COMMIT  := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

WARN    := -Wall -Wextra -Wpedantic -Werror -Wno-unused-parameter -Wno-format-truncation -Wno-missing-field-initializers
CFLAGS  := -std=c11 $(OPT) -g $(WARN) -fPIC -pthread -Iinclude -Isrc \
           -D_POSIX_C_SOURCE=200809L -DONYX_COMMIT='"$(COMMIT)"' $(EXTRA_CFLAGS)
LDLIBS  := -ljpeg -lpng -lz -lm -pthread
SERVER_LIBS := -levent -levent_pthreads -ljansson
ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRC := $(sort $(wildcard src/base/*.c src/onnx/*.c src/core/*.c src/ops/*.c \
                             src/ops/ml/*.c src/kernels/*.c src/io/*.c))
CLI_SRC := $(sort $(wildcard src/cli/*.c src/server/*.c))
UNIT_SRC:= $(sort $(wildcard tests/unit/*.c))

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_OBJ:= $(UNIT_SRC:%.c=$(BUILD)/obj/%.o)

ISA_avx2   := -mavx2 -mfma -mf16c
ISA_avx512 := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c
ISA_amx    := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mamx-tile -mamx-bf16 -mfma

.PHONY: all lib asan run deps test test-deps unit conformance pytest clean docs check-docs \
        install size
all: $(BUILD)/onyx $(BUILD)/libonyx.a $(BUILD)/libonyx.so $(BUILD)/example \
     $(BUILD)/unit_tests $(BUILD)/conformance $(BUILD)/opdoc $(BUILD)/peak

lib: $(BUILD)/libonyx.a

$(BUILD)/obj/%_avx2.o: %_avx2.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ISA_avx2) -MMD -MP -c $< -o $@
$(BUILD)/obj/%_avx512.o: %_avx512.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ISA_avx512) -MMD -MP -c $< -o $@
$(BUILD)/obj/%_amx.o: %_amx.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ISA_amx) -MMD -MP -c $< -o $@
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# The objects that print the commit are rebuilt when it changes: an
# incremental build kept the old one, and `onyx --version` and the JSON of
# `onyx bench` (which bench/compare.py records) named a commit that was not
# the code's.
COMMIT_STAMP := $(BUILD)/commit-$(COMMIT)
$(COMMIT_STAMP):
	@mkdir -p $(BUILD) && rm -f $(BUILD)/commit-* && touch $@
$(BUILD)/obj/src/cli/main.o $(BUILD)/obj/src/cli/bench.o: $(COMMIT_STAMP)

$(BUILD)/libonyx.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/libonyx.so: $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/onyx: $(CLI_OBJ) $(BUILD)/libonyx.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libonyx.a $(ONYX_STATIC_LIBS) -Wl,-Map=$@.map
	@$(STRIP) -o $@.stripped $@ && du -b $@.stripped | \
	  awk '{ printf "onyx: %.1f MB stripped (budget $(SIZE_BUDGET_MB) MB)\n", $$1 / 1048576 }'

# ---------------------------------------------------------------------------
# The onyx executable ships as one file (issue 7, docs/bundle.md): every
# third-party library (the -l flags of SERVER_LIBS and LDLIBS) is linked from
# its Debian .a archive; only glibc (libc, libm, libpthread, ld-linux) stays
# shared. libonyx.so keeps linking them dynamically. `onyx --version` shows
# the compiler and these flags.
STRIP          ?= strip
SIZE_BUDGET_MB := 6
ONYX_STATIC_LIBS := -Wl,-Bstatic -Wl,--start-group \
                    $(filter-out -lm -pthread,$(SERVER_LIBS) $(LDLIBS)) \
                    -Wl,--end-group -Wl,-Bdynamic -lm -pthread
$(BUILD)/obj/src/cli/main.o: CFLAGS += -DONYX_BUILD_FLAGS='"$(OPT)$(if $(filter 1,$(SAN)), asan+ubsan)"'

$(BUILD)/example: $(BUILD)/obj/examples/classify.o $(BUILD)/libonyx.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/unit_tests: $(UNIT_OBJ) $(BUILD)/libonyx.a
	$(CC) $(LDFLAGS) -o $@ $(UNIT_OBJ) $(BUILD)/libonyx.a $(LDLIBS)
$(BUILD)/conformance: $(BUILD)/obj/tests/conformance/runner.o $(BUILD)/libonyx.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# bench/peak.c: the FMA peak bench/compare.py measures both engines against;
# a bench tool, built without sanitizers, its ISA chosen per function.
$(BUILD)/peak: bench/peak.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 $(WARN) -D_POSIX_C_SOURCE=200809L -pthread -o $@ $<

$(BUILD)/opdoc: $(BUILD)/obj/tools/opdoc.o $(BUILD)/libonyx.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# docs/operators.md is generated from the registry; `make test` fails when stale.
docs: $(BUILD)/opdoc
	$(BUILD)/opdoc > docs/operators.md
check-docs: $(BUILD)/opdoc
	@$(BUILD)/opdoc | diff -q - docs/operators.md >/dev/null || \
	  { echo "docs/operators.md is stale: run 'make docs'"; exit 1; }

asan:
	$(MAKE) BUILD=build/asan SAN=1 OPT=-O1 all

# ---------------------------------------------------------------------------
# make size: the stripped onyx and what it is made of (from the link map),
# failing when over budget. make install PREFIX=...: bin/onyx (stripped),
# lib/libonyx.a, lib/libonyx.so, include/onyx.h, lib/pkgconfig/onyx.pc.

size: $(BUILD)/onyx
	@size $(BUILD)/onyx.stripped
	@awk 'function hex(s,  v, i) { v = 0; for (i = 3; i <= length(s); i++) \
	         v = v * 16 + index("0123456789abcdef", tolower(substr(s, i, 1))) - 1; return v } \
	  /^ \.[A-Za-z_.0-9]+$$/ { wrapped = $$1; next } \
	  wrapped != "" && NF == 3 && $$1 ~ /^0x/ { $$0 = " " wrapped " " $$0 } { wrapped = "" } \
	  /^ \.(text|rodata|data|eh_frame|gcc_except)/ && NF == 4 && $$3 ~ /^0x/ { \
	    n = $$4; sub(/.*\//, "", n); if (n !~ /^libonyx/) sub(/\(.*$$/, "", n); \
	    sz[n] += hex($$3); all += hex($$3) } \
	  END { printf "%10.1f KB  code and data, by object or archive:\n", all / 1024; \
	        for (n in sz) if (sz[n] >= 8192) printf "%10.1f KB  %s\n", sz[n] / 1024, n }' \
	  $(BUILD)/onyx.map | sort -rn | head -25
	@b=$$(du -b $(BUILD)/onyx.stripped | cut -f1); \
	  echo "onyx: $$(awk -v b=$$b 'BEGIN{printf "%.2f", b/1048576}') MB stripped, budget $(SIZE_BUDGET_MB) MB"; \
	  test $$b -le $$(( $(SIZE_BUDGET_MB) * 1048576 )) || { echo "over budget"; exit 1; }

PREFIX  ?= /usr/local
DESTDIR ?=
install: $(BUILD)/onyx $(BUILD)/libonyx.a $(BUILD)/libonyx.so onyx.pc.in
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 $(BUILD)/onyx.stripped $(DESTDIR)$(PREFIX)/bin/onyx
	install -m 644 $(BUILD)/libonyx.a $(DESTDIR)$(PREFIX)/lib/libonyx.a
	install -m 755 $(BUILD)/libonyx.so $(DESTDIR)$(PREFIX)/lib/libonyx.so
	install -m 644 include/onyx.h $(DESTDIR)$(PREFIX)/include/onyx.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' \
	  -e 's|@LIBS_PRIVATE@|$(LDLIBS)|g' onyx.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/onyx.pc

# ---------------------------------------------------------------------------
# Test environment: apt packages and a venv with pinned oracles.

VENV    := .venv
PY      := $(VENV)/bin/python
test-deps: $(VENV)/.stamp
$(VENV)/.stamp: tests/requirements.txt tools/setup-deps.sh
	bash tools/setup-deps.sh test
	rm -rf $(VENV)
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r tests/requirements.txt
	touch $@

ONNX_NODE_DATA = $(shell $(PY) -c 'import onnx,os;print(os.path.join(os.path.dirname(onnx.__file__),"backend/test/data/node"))')

unit: all
	$(BUILD)/unit_tests
conformance: all test-deps
	$(BUILD)/conformance --expected tests/conformance/expected_failures.txt $(ONNX_NODE_DATA)
pytest: all test-deps
	ONYX=$(abspath $(BUILD))/onyx $(PY) -m pytest -q tests

deps:
	bash tools/setup-deps.sh

test: test-deps
	bash tools/setup-deps.sh test
	$(MAKE) all
	$(MAKE) asan
	$(MAKE) check-docs
	ONYX_NODE_DATA=$(ONNX_NODE_DATA) build/unit_tests
	ONYX_NODE_DATA=$(ONNX_NODE_DATA) build/asan/unit_tests
	build/conformance --expected tests/conformance/expected_failures.txt $(ONNX_NODE_DATA)
	build/asan/conformance --timeout 300 --expected tests/conformance/expected_failures.txt $(ONNX_NODE_DATA)
	ONYX=$(CURDIR)/build/onyx ONYX_ASAN=$(CURDIR)/build/asan/onyx $(PY) -m pytest -q tests

run: deps
	$(MAKE) all
	$(BUILD)/onyx serve --model-repository models --port 8000

# ---------------------------------------------------------------------------
# Web page of `onyx serve` (issue 6, docs/demo.md; block owned by the demo
# helper): tools/embed.c turns the files of web/ into $(BUILD)/gen/ui_assets.c
# (byte arrays + onyx_ui_find, src/server/ui_assets.h), linked into onyx.
# embed is a build-time tool: built without sanitizers, never installed.
UI_FILES := $(sort $(wildcard web/*.html web/*.js web/*.css web/*.svg web/*.png))
UI_OBJ   := $(BUILD)/obj/gen/ui_assets.o
CLI_OBJ  += $(UI_OBJ)
$(BUILD)/onyx: $(UI_OBJ)
$(BUILD)/tools/embed: tools/embed.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 $(WARN) -D_POSIX_C_SOURCE=200809L -o $@ $<
$(BUILD)/gen/ui_assets.c: $(BUILD)/tools/embed $(UI_FILES)
	@mkdir -p $(dir $@)
	$(BUILD)/tools/embed -o $@ $(UI_FILES)
$(UI_OBJ): $(BUILD)/gen/ui_assets.c src/server/ui_assets.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
