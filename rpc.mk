# rpc.mk — included by the Makefile: ipcf-idl, the interface compiler, and the
# code it generates from .x files (docs/RPC.md).
#
#   src/idl/*.c          the compiler (main.c) and its library -> bin/ipcf-idl, lib/libidl.a
#   <dir>/<name>.x       an interface -> $(BUILD)/gen/<dir>/<name>.{h,c,o} by ipcf-idl
#   tests/rpc/*.x        also through rpcgen (the oracle of test-rpc-xdr)
#
# A program that uses an interface lists the generated object as a
# prerequisite and finds the header with -I$(BUILD)/gen/<dir>.

IDL_MAIN    := src/idl/main.c
IDL_SRCS    := $(filter-out $(IDL_MAIN),$(wildcard src/idl/*.c))
LIBIDL_A    := $(BUILD)/lib/libidl.a
IDL         := $(BUILD)/bin/ipcf-idl
TIRPC_CFLAGS := $(shell pkg-config --cflags libtirpc 2>/dev/null)
TIRPC_LIBS   := $(shell pkg-config --libs libtirpc 2>/dev/null)

all: $(IDL)
INSTALL_BINS += $(IDL)





$(LIBIDL_A): $(call obj,$(IDL_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(IDL): $(call obj,$(IDL_MAIN)) $(LIBIDL_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^

# The interfaces of this tree; generated code compiles under the project's
# own warnings (-Werror). (Static pattern rules: make's built-in %.o: %.c
# must not compile them without our flags.)
RPC_IFACES := tests/rpc/alltypes.x tests/rpc/counter.x examples/rpc/calc.x examples/rpc/files.x bench/rpcbench.x
GEN_C := $(patsubst %.x,$(BUILD)/gen/%.c,$(RPC_IFACES))
$(GEN_C): $(BUILD)/gen/%.c: %.x $(IDL)
	@mkdir -p $(dir $@)
	$(IDL) -o $(dir $@) $<
$(GEN_C:.c=.h): $(BUILD)/gen/%.h: $(BUILD)/gen/%.c ;
$(GEN_C:.c=.o): $(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	$(CC) $(CFLAGS_ALL) -c $< -o $@

# rpcgen's code for the same interfaces: the independent oracle.
$(BUILD)/gen/rpcgen/%.h: tests/rpc/%.x
	@mkdir -p $(dir $@)
	cp $< $(BUILD)/gen/rpcgen/$*.x
	cd $(BUILD)/gen/rpcgen && rm -f $*.h $*_xdr.c && rpcgen -h -o $*.h $*.x && rpcgen -c -o $*_xdr.c $*.x
$(BUILD)/gen/rpcgen/%_xdr.o: $(BUILD)/gen/rpcgen/%.h
	$(CC) -std=gnu11 $(OPT) -g -fPIC -D_GNU_SOURCE -w $(TIRPC_CFLAGS) -c $(BUILD)/gen/rpcgen/$*_xdr.c -o $@

# test-rpc-xdr: the generated XDR code against rpcgen + libtirpc.
$(BUILD)/obj/tests/test-rpc-xdr.o: CFLAGS_ALL += $(TIRPC_CFLAGS) -I$(BUILD)/gen/rpcgen
$(BUILD)/obj/tests/test-rpc-xdr.o: | $(BUILD)/gen/rpcgen/alltypes.h
$(BUILD)/tests/test-rpc-xdr: $(BUILD)/obj/tests/test-rpc-xdr.o $(BUILD)/gen/tests/rpc/alltypes.o \
                             $(BUILD)/gen/rpcgen/alltypes_xdr.o $(TEST_LINK)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL) $(TIRPC_LIBS)

# test-idl: the compiler run on good and bad interface files.
$(BUILD)/tests/test-idl: | $(IDL)

# test-idl-json: JSON <-> XDR of `ipcf rpc call` (src/idl/dyn.c), in process.
$(BUILD)/tests/test-idl-json: $(BUILD)/obj/tests/test-idl-json.o $(LIBIDL_A) $(TEST_LINK)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

# Fuzz targets: the compiler's parser and checker; the shell tool's JSON <-> XDR
# (fuzz-dyn); the generated decoder.
# (Objects built with FUZZ_CFLAGS, as the targets' own: see the Makefile.)
$(FUZZ_BUILD)/fuzz-idl: $(call fuzz_obj,$(IDL_SRCS))
$(FUZZ_BUILD)/fuzz-dyn: $(call fuzz_obj,$(IDL_SRCS))
$(FUZZ_BUILD)/obj/fuzz/fuzz-xdr.o: FUZZ_CFLAGS += -I$(BUILD)/gen/tests/rpc
$(FUZZ_BUILD)/obj/fuzz/fuzz-xdr.o: | $(BUILD)/gen/tests/rpc/alltypes.h
$(FUZZ_BUILD)/obj/gen/alltypes.o: $(BUILD)/gen/tests/rpc/alltypes.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -c $< -o $@
$(FUZZ_BUILD)/fuzz-xdr: $(FUZZ_BUILD)/obj/gen/alltypes.o

# test-rpc-hosts: the same across two hosts (daemons in network namespaces).
$(BUILD)/obj/tests/test-rpc-hosts.o: CFLAGS_ALL += -I$(BUILD)/gen/tests/rpc
$(BUILD)/obj/tests/test-rpc-hosts.o: | $(BUILD)/gen/tests/rpc/counter.h
$(BUILD)/tests/test-rpc-hosts: $(BUILD)/obj/tests/test-rpc-hosts.o $(BUILD)/gen/tests/rpc/counter.o $(TEST_LINK)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

# test-rpc: the runtime against the real daemon, through stubs of counter.x.
$(BUILD)/obj/tests/test-rpc.o: CFLAGS_ALL += -I$(BUILD)/gen/tests/rpc
$(BUILD)/obj/tests/test-rpc.o: | $(BUILD)/gen/tests/rpc/counter.h
$(BUILD)/tests/test-rpc: $(BUILD)/obj/tests/test-rpc.o $(BUILD)/gen/tests/rpc/counter.o $(TEST_LINK)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)
$(FUZZ_BUILD)/fuzz-rpcwire: $(call fuzz_obj,src/lib/rpc/wire.c)

# `ipcf rpc` parses servers' descriptions with the compiler's front end.
$(IPCF): $(LIBIDL_A)

# The RPC examples: examples/rpc/<iface>-{server,client}.c with <iface>.x,
# linked as applications link the installed library.
RPC_EXAMPLES := $(patsubst examples/rpc/%.c,$(BUILD)/examples/%,$(wildcard examples/rpc/*.c))
all: $(RPC_EXAMPLES)
$(BUILD)/obj/examples/rpc/%.o: CFLAGS_ALL += -I$(BUILD)/gen/examples/rpc
$(BUILD)/obj/examples/rpc/calc-server.o $(BUILD)/obj/examples/rpc/calc-client.o: | $(BUILD)/gen/examples/rpc/calc.h
$(BUILD)/obj/examples/rpc/files-server.o $(BUILD)/obj/examples/rpc/files-client.o: | $(BUILD)/gen/examples/rpc/files.h
$(BUILD)/examples/calc-%: $(BUILD)/obj/examples/rpc/calc-%.o $(BUILD)/gen/examples/rpc/calc.o $(LIBIPCF_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBIPCF_LDLIBS)
$(BUILD)/examples/files-%: $(BUILD)/obj/examples/rpc/files-%.o $(BUILD)/gen/examples/rpc/files.o $(LIBIPCF_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBIPCF_LDLIBS)
# (After RPC_EXAMPLES: prerequisites expand when read.) test-rpc runs them and the tool.
$(BUILD)/tests/test-rpc $(BUILD)/tests/test-rpc-hosts: | $(RPC_EXAMPLES) $(IPCF)

# bench-rpc: the stubs against raw calls, ONC RPC and D-Bus (bench/chan.c).
$(BUILD)/obj/bench/bench-rpc.o: CFLAGS_ALL += $(CMP_CFLAGS) -I$(BUILD)/gen/bench
$(BUILD)/obj/bench/bench-rpc.o: | $(BUILD)/gen/bench/rpcbench.h $(RPCGEN_DIR)/benchrpc.h
$(BUILD)/bench/bench-rpc: $(BUILD)/obj/bench/bench-rpc.o $(BUILD)/gen/bench/rpcbench.o $(call obj,$(CMPLIB_SRCS)) \
                          $(RPCGEN_OBJS) $(TEST_LINK)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL) $(CMP_LDLIBS)
