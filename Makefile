# ipcf — build.
#
# Targets: `make` (all) builds the product: libipcf (shared and static),
# ipcfd, ipcf, the examples, ipcf.pc. `make check` also builds the tests, the
# tools and the benchmarks (test-bench-smoke runs them) and runs the tests.
# `make bench` / `make bench-suite` build and run the benchmarks (they need
# the peers: NNG, ZeroMQ, D-Bus, rpcgen; a plain `make` does not).
# `make install` / `make uninstall` (PREFIX, DESTDIR, LIBDIR, ...: see below).
#
# Sources are discovered by folder, so adding a file needs no edit here:
#   src/common/*.c   wire formats and utilities      -> linked into everything
#   src/lib/*/*.c    libipcf (core/, models/, groups/) -> libipcf.so.X.Y.Z, libipcf.a
#                    (the product), libipcf-internal.a (daemon, tool, tests)
#   src/efcp/*.c     EFCP engine (sans-I/O)          -> libefcp.a (internal)
#   src/daemon/*/*.c ipcfd (core/main.c holds main()) -> bin/ipcfd, libipcfd.a (tests)
#   src/cli/*.c      the ipcf tool                   -> bin/ipcf
#   tests/support/*.c  test harness and simulators   -> libtestsupport.a
#   tests/test-*.c   one test program each           -> tests/test-*
#   tests/daemons/*.c  a module linked into a test ipcfd -> tests/ipcfd-* (the daemon
#                    with that module added: tests of the daemon's seams)
#   bench/bench-*.c  one benchmark program each      -> bench/bench-*
#   tools/*.c        one tool program each           -> bin/<name> (engine + harness only)
#   tools/chaos/*.c  the chaos driver (one program)  -> bin/ipcf-chaos
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
# The daemon's directory client (src/daemon/directory: etcd's JSON gateway).
DAEMON_LDLIBS := -lcurl -ljson-c -lsystemd

# SAN_FLAGS: what a program built against this build's library needs too.
ifeq ($(SAN),asan)
  SAN_FLAGS  := -fsanitize=address,undefined
  CFLAGS_ALL += $(SAN_FLAGS) -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS    += $(SAN_FLAGS)
endif
ifeq ($(SAN),tsan)
  # gcc warns that TSan ignores atomic_thread_fence (-Wtsan); clang models it.
  SAN_FLAGS  := -fsanitize=thread
  CFLAGS_ALL += $(SAN_FLAGS) -fno-omit-frame-pointer \
                $(if $(findstring clang,$(shell $(CC) --version 2>/dev/null)),,-Wno-tsan)
  LDFLAGS    += $(SAN_FLAGS)
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
# Examples that need a library besides libipcf (an event loop) are built
# with the tests, not by `make`: examples/<name>.c with its pkg-config
# package in EXAMPLE_PKG_<name>.
EXAMPLE_PKG_eventloop-uv   := libuv
EXAMPLE_PKG_eventloop-glib := glib-2.0
EXAMPLE_DEP_SRCS := $(foreach e,eventloop-uv eventloop-glib,examples/$(e).c)
EXAMPLE_SRCS := $(filter-out $(EXAMPLE_DEP_SRCS),$(wildcard examples/*.c))
FUZZ_SRCS    := $(wildcard fuzz/fuzz-*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

# The library's version comes from the header (IPCF_VERSION_*): the file is
# libipcf.so.MAJOR.MINOR.PATCH, its SONAME libipcf.so.MAJOR.
ipcf_version_of = $(or $(shell sed -n 's/^\#define IPCF_VERSION_$(1) \([0-9][0-9]*\).*/\1/p' include/ipcf.h),0)
VERSION_MAJOR := $(call ipcf_version_of,MAJOR)
VERSION_MINOR := $(call ipcf_version_of,MINOR)
VERSION_PATCH := $(call ipcf_version_of,PATCH)
VERSION       := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)
SONAME        := libipcf.so.$(VERSION_MAJOR)

# libipcf.a and libipcf.so* are what is installed; libipcf-internal.a holds
# the same objects for the programs of this tree that reach inside them.
LIBIPCF_A     := $(BUILD)/lib/libipcf.a
LIBIPCF_SO    := $(BUILD)/lib/libipcf.so.$(VERSION)
LIBIPCF_LINKS := $(BUILD)/lib/$(SONAME) $(BUILD)/lib/libipcf.so
LIBIPCF_INT_A := $(BUILD)/lib/libipcf-internal.a
LIBIPCF_LDLIBS := -lpthread
IPCF_PC    := $(BUILD)/lib/pkgconfig/ipcf.pc
LIBEFCP_A  := $(BUILD)/lib/libefcp.a
LIBIPCFD_A := $(BUILD)/lib/libipcfd.a
LIBTSUP_A  := $(BUILD)/lib/libtestsupport.a
IPCFD      := $(BUILD)/bin/ipcfd
IPCF       := $(BUILD)/bin/ipcf
TESTS      := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
TEST_DAEMONS := $(patsubst tests/daemons/%.c,$(BUILD)/tests/ipcfd-%,$(wildcard tests/daemons/*.c))
BENCHES    := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))
TOOLS      := $(patsubst tools/%.c,$(BUILD)/bin/%,$(TOOL_SRCS))
EXAMPLES   := $(patsubst examples/%.c,$(BUILD)/examples/%,$(EXAMPLE_SRCS))
EXAMPLES_DEP := $(patsubst examples/%.c,$(BUILD)/examples/%,$(EXAMPLE_DEP_SRCS))

# Tests of the installed product run make, the compiler and the sanitizers
# of this build from the tree they were built in.
$(call obj,$(TEST_SRCS)): CFLAGS_ALL += -DTEST_SRCDIR='"$(CURDIR)"' -DTEST_CC='"$(CC)"' \
                                        -DTEST_SAN='"$(SAN)"' -DTEST_SANFLAGS='"$(SAN_FLAGS)"'

# What a test links: the harness and the library (tests of the daemon's own
# internals, test-daemon-*, also link the daemon core; see below).
TEST_LINK  := $(LIBTSUP_A) $(LIBIPCF_INT_A) $(LIBEFCP_A)

# The product (what `make` builds and `make install` installs), the tests
# with their tools, and the benchmarks. Other parts add to these lists.
# systemd units: dist/systemd/{user,system}/ipcfd.{socket,service.in}, with
# @BINDIR@ filled in, into $(BUILD)/systemd/{user,system}/.
UNIT_SRCS  := $(wildcard dist/systemd/*/ipcfd.*)
UNITS      := $(patsubst dist/%,$(BUILD)/%,$(UNIT_SRCS:.in=))

# Manual: man/*.scd (ipcf.1, ipcf-idl.1, ipcfd.8, ipcfd.conf.5) through scdoc; section 3
# made from include/ipcf.h by man/gen-man3.awk into $(BUILD)/man/man3/.
MAN_PAGES  := $(patsubst man/%.scd,$(BUILD)/man/%,$(wildcard man/*.scd))
MAN3_STAMP := $(BUILD)/man/man3/.stamp

PRODUCT    := $(LIBIPCF_A) $(LIBIPCF_SO) $(LIBIPCF_LINKS) $(IPCF_PC) $(IPCFD) $(IPCF) $(EXAMPLES) \
              $(UNITS) $(MAN_PAGES) $(MAN3_STAMP)
TEST_PROGS := $(TESTS) $(TEST_DAEMONS) $(TOOLS) $(EXAMPLES_DEP)
BENCH_PROGS = $(BENCHES) $(CMPS)

.PHONY: all lib tests benches test check bench bench-suite fuzz fuzz-smoke clean demo install uninstall
all: $(PRODUCT)
lib: $(LIBIPCF_A) $(LIBIPCF_SO) $(LIBIPCF_LINKS) $(IPCF_PC)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

LIB_OBJS := $(call obj,$(COMMON_SRCS) $(LIB_SRCS))

$(LIBIPCF_INT_A): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# The installed static library is one relocatable object in which only the
# public API (IPCF_API: default visibility) stays global: everything else is
# made local, so an application may have its own safe_close or ring_init.
LIBIPCF_PUB_O := $(BUILD)/obj/libipcf-public.o
$(LIBIPCF_PUB_O): $(LIB_OBJS)
	$(LD) -r -o $@.tmp $^ && objcopy --localize-hidden $@.tmp $@ && rm -f $@.tmp

$(LIBIPCF_A): $(LIBIPCF_PUB_O)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# The shared library exports the functions of src/lib/libipcf.map, versioned.
LIBIPCF_MAP := src/lib/libipcf.map
$(LIBIPCF_SO): $(LIB_OBJS) $(LIBIPCF_MAP)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=$(LIBIPCF_MAP) \
	      $(if $(SAN),,-Wl,-z,defs) $(LDFLAGS) -o $@ $(LIB_OBJS) $(LIBIPCF_LDLIBS)

# libipcf.so.MAJOR (what programs load) and libipcf.so (what -lipcf finds).
$(LIBIPCF_LINKS): $(LIBIPCF_SO)
	ln -sf $(notdir $<) $@

# ipcf.pc: $(call PC_SUBST,prefix,libdir,includedir) filters dist/ipcf.pc.in;
# directories under the prefix are written as ${prefix}/... so that
# pkg-config --define-prefix and PKG_CONFIG_SYSROOT_DIR both work. The one in
# the build tree serves programs built against the tree without installing.
# (make's words split at blanks: a blank in the directories is a unit
# separator, \037, while patsubst looks.)
blank := $(empty) $(empty)
unit_sep := $(shell printf '\037')
blanks_hidden = $(subst $(blank),$(unit_sep),$(1))
blanks_shown = $(subst $(unit_sep),$(blank),$(1))
pc_rel = $(call blanks_shown,$(patsubst $(call blanks_hidden,$(1))/%,$${prefix}/%,$(call blanks_hidden,$(2))))
PC_SUBST = sed -e 's|@PREFIX@|$(1)|g' -e 's|@LIBDIR@|$(call pc_rel,$(1),$(2))|g' \
               -e 's|@INCLUDEDIR@|$(call pc_rel,$(1),$(3))|g' \
               -e 's|@VERSION@|$(VERSION)|g' -e 's|@LIBS_PRIVATE@|$(LIBIPCF_LDLIBS)|g'
# The installed one is relocatable: prefix=${pcfiledir}/../.. (as meson's
# pkgconfig.relocatable), so that the tree staged in a DESTDIR or moved
# elsewhere serves with nothing but PKG_CONFIG_PATH pointing into it, and an
# installed one resolves to PREFIX; PKG_CONFIG_SYSROOT_DIR still works. Not
# for PREFIX=/usr (a distribution's, whose .pc files say /usr) nor a
# PKGCONFIGDIR outside PREFIX. $(call PC_RELOCATE,file); a shell test, so
# that blanks in PREFIX or PKGCONFIGDIR are part of the path.
PC_RELOCATE = case "$(PREFIX)" in /usr) ;; *) case "$(PKGCONFIGDIR)" in "$(PREFIX)"/*) \
	sed -i "s|^prefix=.*|prefix=\$${pcfiledir}/$$(realpath -m --relative-to="$(PKGCONFIGDIR)" "$(PREFIX)")|" "$(1)";; \
	esac;; esac
$(IPCF_PC): dist/ipcf.pc.in include/ipcf.h
	@mkdir -p $(dir $@)
	$(call PC_SUBST,$(CURDIR),$(abspath $(BUILD))/lib,$(CURDIR)/include) $< >$@

$(LIBEFCP_A): $(call obj,$(EFCP_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBIPCFD_A): $(call obj,$(DAEMON_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBTSUP_A): $(call obj,$(TSUP_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(IPCFD): $(call obj,$(DAEMON_MAIN)) $(LIBIPCFD_A) $(LIBEFCP_A) $(LIBIPCF_INT_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL) $(DAEMON_LDLIBS)

$(IPCF): $(call obj,$(CLI_SRCS)) $(LIBIPCF_INT_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_LINK)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/tests/test-daemon-%: $(BUILD)/obj/tests/test-daemon-%.o $(LIBTSUP_A) $(LIBIPCFD_A) $(LIBEFCP_A) $(LIBIPCF_INT_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL) $(DAEMON_LDLIBS)

$(BUILD)/tests/ipcfd-%: $(BUILD)/obj/tests/daemons/%.o $(call obj,$(DAEMON_MAIN)) $(LIBIPCFD_A) $(LIBEFCP_A) $(LIBIPCF_INT_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL) $(DAEMON_LDLIBS)

# The EFCP engine stands alone: its tests link only the engine and the harness.
$(BUILD)/tests/test-efcp-%: $(BUILD)/obj/tests/test-efcp-%.o $(LIBTSUP_A) $(LIBEFCP_A) $(call obj,$(COMMON_SRCS))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

# The directory's benchmark drives the daemon's directory module against a
# real etcd cluster (tests/support/etcdcluster.c).
$(BUILD)/bench/bench-directory: $(BUILD)/obj/bench/bench-directory.o $(LIBTSUP_A) $(LIBIPCFD_A) $(LIBIPCF_INT_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL) $(DAEMON_LDLIBS)

# bench-dir-daemons' raw etcd peer speaks to etcd with libcurl.
$(BUILD)/bench/bench-dir-daemons: BENCH_LDLIBS += -lcurl

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(TEST_LINK)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL) $(BENCH_LDLIBS)

# Side-by-side suite (bench/suite.sh, docs/PERFORMANCE.md): each bench/cmp-*.c
# is one program linking the shared helpers (bench/benchlib.c, chan.c, measure.c),
# the ONC RPC stubs rpcgen makes from bench/benchrpc.x at build time (into
# $(BUILD)/gen/bench, never committed) and the libraries of the alternatives.
CMP_SRCS    := $(wildcard bench/cmp-*.c)
CMPLIB_SRCS := bench/benchlib.c bench/chan.c bench/batch.c bench/measure.c
CMPS        := $(patsubst bench/%.c,$(BUILD)/bench/%,$(CMP_SRCS))
RPCGEN_DIR  := $(BUILD)/gen/bench
RPCGEN_OBJS := $(patsubst %,$(RPCGEN_DIR)/benchrpc_%.o,xdr clnt svc)
CMP_CFLAGS  := $(shell pkg-config --cflags libtirpc dbus-1 2>/dev/null) -I$(RPCGEN_DIR)
CMP_LDLIBS  := -lnng -lzmq $(shell pkg-config --libs libtirpc dbus-1 2>/dev/null) -lrt
$(call obj,$(CMP_SRCS) $(CMPLIB_SRCS)): CFLAGS_ALL += $(CMP_CFLAGS)
$(call obj,$(CMP_SRCS) $(CMPLIB_SRCS)): | $(RPCGEN_DIR)/benchrpc.h
$(CMPS): $(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(call obj,$(CMPLIB_SRCS)) $(RPCGEN_OBJS) $(LIBIPCF_INT_A)
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

# The chaos driver (tools/chaos/, several files: one program): real
# processes against the real daemon, so it links the library and the harness.
CHAOS_SRCS := $(wildcard tools/chaos/*.c)
CHAOS      := $(BUILD)/bin/ipcf-chaos
TEST_PROGS += $(CHAOS)
$(CHAOS): $(call obj,$(CHAOS_SRCS)) $(LIBTSUP_A) $(LIBIPCF_INT_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

# Examples link the installed form of the library and only what ipcf.pc names
# (and, for EXAMPLES_DEP, their package's: its headers as system headers).
$(BUILD)/examples/%: $(BUILD)/obj/examples/%.o $(LIBIPCF_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBIPCF_LDLIBS) $(EXAMPLE_LIBS)
$(foreach e,$(EXAMPLE_DEP_SRCS:examples/%.c=%), \
  $(eval $(BUILD)/obj/examples/$(e).o: CFLAGS_ALL += $$(patsubst -I%,-isystem %,$$(shell pkg-config --cflags $(EXAMPLE_PKG_$(e))))) \
  $(eval $(BUILD)/examples/$(e): EXAMPLE_LIBS = $$(shell pkg-config --libs $(EXAMPLE_PKG_$(e)))))

# (Here, below every list they use: prerequisites expand when read.)
tests: $(TEST_PROGS)
benches: $(BENCH_PROGS)

# Tests run against the real daemon of this build (see tests/run-tests.sh).
# test-bench-smoke runs the benchmark programs, so they are built here too.
test check: all tests benches
	IPCF_BUILD=$(BUILD) tests/run-tests.sh $(BUILD)

# libFuzzer targets: always clang, with ASan+UBSan; each links the sources it fuzzes.
FUZZ_BUILD := $(BUILD)/fuzz
FUZZ_CFLAGS := -std=gnu11 -O1 -g -D_GNU_SOURCE -Iinclude -Isrc -Itests \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
               -fsanitize-coverage-ignorelist=fuzz/coverage-ignore.txt
# Parsers of untrusted input live in src/common or src/efcp (pure functions), so
# a fuzz target links just those. They are compiled once into $(FUZZ_BUILD)/obj
# (with FUZZ_CFLAGS, as each target's own file) and every target links the objects.
FUZZ_LINK_SRCS := $(COMMON_SRCS) $(EFCP_SRCS)
fuzz_obj = $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(1))
$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@
$(FUZZ_BUILD)/%: $(FUZZ_BUILD)/obj/fuzz/%.o $(call fuzz_obj,$(FUZZ_LINK_SRCS))
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $^ -lsodium -lpthread -lm
# The directory's parsers of etcd's answers and records (src/daemon/directory)
# are pure too, but use json-c.
DIR_FUZZ_SRCS := src/daemon/directory/record.c src/daemon/directory/etcdmsg.c
$(FUZZ_BUILD)/fuzz-directory: $(call fuzz_obj,fuzz/fuzz-directory.c $(DIR_FUZZ_SRCS) $(FUZZ_LINK_SRCS))
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $^ -lsodium -ljson-c -lpthread -lm
# The stall target runs a whole simulated transfer per input: comparison
# tracing inside the engine's loops was half its time (perf), and without it
# it runs 3x faster (1,266 -> 3,753 exec/s) and reaches more edges in the same
# time (919 -> 942 in 20 s); its input is datagrams, whose frame types a byte
# mutation finds without comparison hints. Its objects, built so, are its own
# ($(FUZZ_BUILD)/obj-nocmp).
FUZZ_NOCMP_CFLAGS := $(FUZZ_CFLAGS) -fno-sanitize-coverage=trace-cmp
$(FUZZ_BUILD)/obj-nocmp/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_NOCMP_CFLAGS) -MMD -MP -c $< -o $@
$(FUZZ_BUILD)/fuzz-efcp-stall: $(patsubst %.c,$(FUZZ_BUILD)/obj-nocmp/%.o,fuzz/fuzz-efcp-stall.c $(FUZZ_LINK_SRCS))
	@mkdir -p $(dir $@)
	clang $(FUZZ_NOCMP_CFLAGS) -o $@ $^ -lsodium -lpthread -lm
# The input side of cat/listen --format (src/cli/format.c) is pure as well.
$(FUZZ_BUILD)/fuzz-unframe: $(call fuzz_obj,fuzz/fuzz-unframe.c src/cli/format.c)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $^
fuzz: $(patsubst fuzz/%.c,$(FUZZ_BUILD)/%,$(FUZZ_SRCS))
fuzz-smoke: fuzz
	tests/run-fuzz.sh $(FUZZ_BUILD) $${FUZZ_SECONDS:-10}

bench: all benches
	bench/run-bench.sh $(BUILD); st=$$?; bench/suite.sh $(BUILD) && exit $$st

# Only the side-by-side suite: bench/results/latest.{csv,md} and the plots.
bench-suite: all benches
	bench/suite.sh $(BUILD)

demo: all
	tools/demo.sh $(BUILD)

# The units of the build name the default BINDIR; `make install` fills in
# its own (as for ipcf.pc).
UNIT_SUBST = sed -e 's|@BINDIR@|$(1)|g'
$(BUILD)/systemd/%: dist/systemd/%.in
	@mkdir -p $(dir $@)
	$(call UNIT_SUBST,/usr/local/bin) $< >$@
$(BUILD)/systemd/%: dist/systemd/%
	@mkdir -p $(dir $@)
	cp $< $@

$(BUILD)/man/%: man/%.scd
	@mkdir -p $(dir $@)
	scdoc <$< >$@.tmp && mv $@.tmp $@
# One page per IPCF_API function, whatever the header holds today.
$(MAN3_STAMP): include/ipcf.h man/gen-man3.awk
	rm -rf $(dir $@) && mkdir -p $(dir $@)
	awk -v out=$(dir $@) -v version=$(VERSION_MAJOR).$(VERSION_MINOR) -f man/gen-man3.awk include/ipcf.h
	touch $@

# Installation (FHS). Every directory can be overridden; DESTDIR is
# prepended to all of them (staged installs, packaging, tests).
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
SYSTEMDUSERUNITDIR ?= $(PREFIX)/lib/systemd/user
MANDIR     ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
SYSTEMDSYSTEMUNITDIR ?= $(PREFIX)/lib/systemd/system
# Programs installed into BINDIR (other parts add theirs).
INSTALL_BINS := $(IPCFD) $(IPCF)

# Every path below is quoted in the shell: DESTDIR and the directories may
# hold blanks (`make install DESTDIR="/tmp/a b"`). A unit names BINDIR with
# each blank written \s (systemd.syntax), as ExecStart splits at blanks.
install: all
	install -d "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(LIBDIR)" "$(DESTDIR)$(INCLUDEDIR)" "$(DESTDIR)$(PKGCONFIGDIR)"
	install -m 755 $(INSTALL_BINS) "$(DESTDIR)$(BINDIR)/"
	install -m 755 $(LIBIPCF_SO) "$(DESTDIR)$(LIBDIR)/"
	ln -sf $(notdir $(LIBIPCF_SO)) "$(DESTDIR)$(LIBDIR)/$(SONAME)"
	ln -sf $(SONAME) "$(DESTDIR)$(LIBDIR)/libipcf.so"
	install -m 644 $(LIBIPCF_A) "$(DESTDIR)$(LIBDIR)/"
	install -m 644 include/ipcf.h "$(DESTDIR)$(INCLUDEDIR)/"
	$(call PC_SUBST,$(PREFIX),$(LIBDIR),$(INCLUDEDIR)) dist/ipcf.pc.in >"$(DESTDIR)$(PKGCONFIGDIR)/ipcf.pc"
	$(call PC_RELOCATE,$(DESTDIR)$(PKGCONFIGDIR)/ipcf.pc)
	chmod 644 "$(DESTDIR)$(PKGCONFIGDIR)/ipcf.pc"
	install -d "$(DESTDIR)$(MANDIR)/man1" "$(DESTDIR)$(MANDIR)/man3" "$(DESTDIR)$(MANDIR)/man5" \
	           "$(DESTDIR)$(MANDIR)/man8" "$(DESTDIR)$(BASHCOMPDIR)"
	for p in $(MAN_PAGES); do install -m 644 $$p "$(DESTDIR)$(MANDIR)/man$${p##*.}/" || exit 1; done
	install -m 644 $(dir $(MAN3_STAMP))*.3 "$(DESTDIR)$(MANDIR)/man3/"
	install -m 644 dist/bash-completion/ipcf "$(DESTDIR)$(BASHCOMPDIR)/ipcf"
	install -d "$(DESTDIR)$(SYSTEMDUSERUNITDIR)" "$(DESTDIR)$(SYSTEMDSYSTEMUNITDIR)"
	for u in $(patsubst dist/systemd/%,%,$(UNIT_SRCS)); do \
	  dir="$(DESTDIR)$(SYSTEMDUSERUNITDIR)"; case $$u in system/*) dir="$(DESTDIR)$(SYSTEMDSYSTEMUNITDIR)";; esac; \
	  $(call UNIT_SUBST,$(subst $(blank),\\s,$(BINDIR))) dist/systemd/$$u >"$$dir/$$(basename $$u .in)" && \
	  chmod 644 "$$dir/$$(basename $$u .in)" || exit 1; \
	done
	$(LDCONFIG_IF_LIVE)

# A real install (no DESTDIR) by root refreshes the loader's cache, so that
# programs linked with -lipcf start at once (Debian's /usr/local/lib is in
# ld.so.conf, but the cache knows only what was there at the last ldconfig).
LDCONFIG_IF_LIVE = $(if $(DESTDIR),,if [ "$$(id -u)" = 0 ]; then ldconfig; fi)

# Removes exactly what install put there (directories stay: they may be shared).
uninstall:
	for f in $(notdir $(INSTALL_BINS)); do rm -f "$(DESTDIR)$(BINDIR)/$$f"; done
	rm -f "$(DESTDIR)$(LIBDIR)/$(notdir $(LIBIPCF_SO))" "$(DESTDIR)$(LIBDIR)/$(SONAME)" \
	      "$(DESTDIR)$(LIBDIR)/libipcf.so" "$(DESTDIR)$(LIBDIR)/libipcf.a"
	rm -f "$(DESTDIR)$(INCLUDEDIR)/ipcf.h" "$(DESTDIR)$(PKGCONFIGDIR)/ipcf.pc"
	for p in $(notdir $(MAN_PAGES)); do rm -f "$(DESTDIR)$(MANDIR)/man$${p##*.}/$$p"; done
	rm -f "$(DESTDIR)$(MANDIR)/man3/libipcf.3" "$(DESTDIR)$(MANDIR)/man3/"ipcf_*.3
	rm -f "$(DESTDIR)$(BASHCOMPDIR)/ipcf"
	for f in $(notdir $(filter $(BUILD)/systemd/user/%,$(UNITS))); do rm -f "$(DESTDIR)$(SYSTEMDUSERUNITDIR)/$$f"; done
	for f in $(notdir $(filter $(BUILD)/systemd/system/%,$(UNITS))); do rm -f "$(DESTDIR)$(SYSTEMDSYSTEMUNITDIR)/$$f"; done
	$(LDCONFIG_IF_LIVE)

# ipcf-idl and generated code (after INSTALL_BINS, which it adds to).
include rpc.mk

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj $(FUZZ_BUILD)/obj $(FUZZ_BUILD)/obj-nocmp -name '*.d' 2>/dev/null)

# Keep objects of test/bench programs (no needless rebuilds).
.SECONDARY:
