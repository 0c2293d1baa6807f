# ipcf — build.
#
# Sources are discovered by folder, so adding a file needs no edit here:
#   src/common/*.c   wire formats and utilities      -> linked into everything
#   src/lib/*/*.c    libipcf (core/, models/, groups/) -> libipcf.so, libipcf.a
#   src/efcp/*.c     EFCP engine (sans-I/O)          -> libefcp.a (internal)
#   src/daemon/*/*.c ipcfd (core/main.c holds main()) -> bin/ipcfd, libipcfd.a (tests)
#   src/cli/*.c      the ipcf tool                   -> bin/ipcf
#   tests/support/*.c  test harness and simulators   -> libtestsupport.a
#   tests/test-*.c   one test program each           -> tests/test-*
#   bench/bench-*.c  one benchmark program each      -> bench/bench-*
#   tools/*.c        one tool program each           -> bin/<name> (engine + harness only)
#   examples/*.c     one example each                -> examples/<name>
#   fuzz/fuzz-*.c    libFuzzer targets (clang only)  -> fuzz/fuzz-*
#
# Variables: CC (gcc or clang), BUILD (output folder), SAN=asan|tsan, OPT.

CC      ?= cc
BUILD   ?= build
OPT     ?= -O2
SAN     ?=

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wpointer-arith -Wformat=2 -Wvla -Wundef -Wno-unused-parameter
CFLAGS_ALL := -std=gnu11 $(OPT) -g -fPIC -fvisibility=hidden -D_GNU_SOURCE $(WARN) -Iinclude -Isrc -Itests $(CFLAGS)
LDLIBS_ALL := -lsodium -lpthread -lm $(LDLIBS)

ifeq ($(SAN),asan)
  CFLAGS_ALL += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS    += -fsanitize=address,undefined
endif
ifeq ($(SAN),tsan)
  # gcc warns that TSan ignores atomic_thread_fence (-Wtsan); clang models it.
  CFLAGS_ALL += -fsanitize=thread -fno-omit-frame-pointer \
                $(if $(findstring clang,$(shell $(CC) --version 2>/dev/null)),,-Wno-tsan)
  LDFLAGS    += -fsanitize=thread
endif

COMMON_SRCS  := $(wildcard src/common/*.c)
LIB_SRCS     := $(wildcard src/lib/*.c src/lib/*/*.c)
EFCP_SRCS    := $(wildcard src/efcp/*.c)
DAEMON_MAIN  := src/daemon/core/main.c
DAEMON_SRCS  := $(filter-out $(DAEMON_MAIN),$(wildcard src/daemon/*.c src/daemon/*/*.c))
CLI_SRCS     := $(wildcard src/cli/*.c)
TSUP_SRCS    := $(wildcard tests/support/*.c)
TEST_SRCS    := $(wildcard tests/test-*.c)
BENCH_SRCS   := $(wildcard bench/bench-*.c)
TOOL_SRCS    := $(wildcard tools/*.c)
EXAMPLE_SRCS := $(wildcard examples/*.c)
FUZZ_SRCS    := $(wildcard fuzz/fuzz-*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBIPCF_A  := $(BUILD)/lib/libipcf.a
LIBIPCF_SO := $(BUILD)/lib/libipcf.so
LIBEFCP_A  := $(BUILD)/lib/libefcp.a
LIBIPCFD_A := $(BUILD)/lib/libipcfd.a
LIBTSUP_A  := $(BUILD)/lib/libtestsupport.a
IPCFD      := $(BUILD)/bin/ipcfd
IPCF       := $(BUILD)/bin/ipcf
TESTS      := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
BENCHES    := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))
TOOLS      := $(patsubst tools/%.c,$(BUILD)/bin/%,$(TOOL_SRCS))
EXAMPLES   := $(patsubst examples/%.c,$(BUILD)/examples/%,$(EXAMPLE_SRCS))

# What a test links: the harness and the library (tests of the daemon's own
# internals, test-daemon-*, also link the daemon core; see below).
TEST_LINK  := $(LIBTSUP_A) $(LIBIPCF_A)

.PHONY: all lib test check bench bench-suite fuzz fuzz-smoke clean demo
all: lib $(IPCFD) $(IPCF) $(TESTS) $(BENCHES) $(TOOLS) $(EXAMPLES)
lib: $(LIBIPCF_A) $(LIBIPCF_SO)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(LIBIPCF_A): $(call obj,$(COMMON_SRCS) $(LIB_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBIPCF_SO): $(call obj,$(COMMON_SRCS) $(LIB_SRCS))
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libipcf.so.0 $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(LIBEFCP_A): $(call obj,$(EFCP_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBIPCFD_A): $(call obj,$(DAEMON_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBTSUP_A): $(call obj,$(TSUP_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(IPCFD): $(call obj,$(DAEMON_MAIN)) $(LIBIPCFD_A) $(LIBEFCP_A) $(LIBIPCF_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(IPCF): $(call obj,$(CLI_SRCS)) $(LIBIPCF_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_LINK)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/tests/test-daemon-%: $(BUILD)/obj/tests/test-daemon-%.o $(LIBTSUP_A) $(LIBIPCFD_A) $(LIBIPCF_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

# The EFCP engine stands alone: its tests link only the engine and the harness.
$(BUILD)/tests/test-efcp-%: $(BUILD)/obj/tests/test-efcp-%.o $(LIBTSUP_A) $(LIBEFCP_A) $(call obj,$(COMMON_SRCS))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(TEST_LINK)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL) $(BENCH_LDLIBS)

# Side-by-side suite (bench/suite.sh, docs/PERFORMANCE.md): each bench/cmp-*.c
# is one program linking the shared helpers (bench/benchlib.c, chan.c, measure.c),
# the ONC RPC stubs rpcgen makes from bench/benchrpc.x at build time (into
# $(BUILD)/gen/bench, never committed) and the libraries of the alternatives.
CMP_SRCS    := $(wildcard bench/cmp-*.c)
CMPLIB_SRCS := bench/benchlib.c bench/chan.c bench/measure.c
CMPS        := $(patsubst bench/%.c,$(BUILD)/bench/%,$(CMP_SRCS))
RPCGEN_DIR  := $(BUILD)/gen/bench
RPCGEN_OBJS := $(patsubst %,$(RPCGEN_DIR)/benchrpc_%.o,xdr clnt svc)
CMP_CFLAGS  := $(shell pkg-config --cflags libtirpc dbus-1 2>/dev/null) -I$(RPCGEN_DIR)
CMP_LDLIBS  := -lnng -lzmq $(shell pkg-config --libs libtirpc dbus-1 2>/dev/null) -lrt
all: $(CMPS)
$(call obj,$(CMP_SRCS) $(CMPLIB_SRCS)): CFLAGS_ALL += $(CMP_CFLAGS)
$(call obj,$(CMP_SRCS) $(CMPLIB_SRCS)): | $(RPCGEN_DIR)/benchrpc.h
$(CMPS): $(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(call obj,$(CMPLIB_SRCS)) $(RPCGEN_OBJS) $(LIBIPCF_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL) $(CMP_LDLIBS)
# rpcgen names the header it includes after its input's path: run it in place.
$(RPCGEN_DIR)/benchrpc.h: bench/benchrpc.x
	@mkdir -p $(dir $@)
	cp $< $(RPCGEN_DIR)/benchrpc.x
	cd $(RPCGEN_DIR) && rm -f benchrpc.h benchrpc_*.c && rpcgen -h -o benchrpc.h benchrpc.x && \
	  rpcgen -c -o benchrpc_xdr.c benchrpc.x && rpcgen -l -o benchrpc_clnt.c benchrpc.x && \
	  rpcgen -m -o benchrpc_svc.c benchrpc.x
$(RPCGEN_DIR)/benchrpc_%.c: $(RPCGEN_DIR)/benchrpc.h ;
# Generated code: no warnings of ours apply.
$(RPCGEN_DIR)/%.o: $(RPCGEN_DIR)/%.c $(RPCGEN_DIR)/benchrpc.h
	$(CC) -std=gnu11 $(OPT) -g -fPIC -D_GNU_SOURCE -w $(CMP_CFLAGS) -c $< -o $@

$(BUILD)/bin/%: $(BUILD)/obj/tools/%.o $(LIBTSUP_A) $(LIBEFCP_A) $(call obj,$(COMMON_SRCS))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/examples/%: $(BUILD)/obj/examples/%.o $(LIBIPCF_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

# Tests run against the real daemon of this build (see tests/run-tests.sh).
test check: all
	IPCF_BUILD=$(BUILD) tests/run-tests.sh $(BUILD)

# libFuzzer targets: always clang, with ASan+UBSan; each links the sources it fuzzes.
FUZZ_BUILD := $(BUILD)/fuzz
FUZZ_CFLAGS := -std=gnu11 -O1 -g -D_GNU_SOURCE -Iinclude -Isrc -Itests \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
# Parsers of untrusted input live in src/common or src/efcp (pure functions), so
# a fuzz target links just those.
FUZZ_LINK_SRCS := $(COMMON_SRCS) $(EFCP_SRCS)
$(FUZZ_BUILD)/%: fuzz/%.c $(FUZZ_LINK_SRCS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $^ -lsodium -lpthread -lm
fuzz: $(patsubst fuzz/%.c,$(FUZZ_BUILD)/%,$(FUZZ_SRCS))
fuzz-smoke: fuzz
	tests/run-fuzz.sh $(FUZZ_BUILD) $${FUZZ_SECONDS:-10}

bench: all
	bench/run-bench.sh $(BUILD); st=$$?; bench/suite.sh $(BUILD) && exit $$st

# Only the side-by-side suite: bench/results/latest.{csv,md} and the plots.
bench-suite: all
	bench/suite.sh $(BUILD)

demo: all
	tools/demo.sh $(BUILD)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# Keep objects of test/bench programs (no needless rebuilds).
.SECONDARY:
