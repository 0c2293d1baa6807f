"""test_rpc — ipcf.rpc against real servers made by ipcf-idl: the calculator
example (build/examples/calc-server) and a server of the interface below,
generated and compiled here (build/bin/ipcf-idl, cc, this build's
libipcf.so.1), each a process of its own on the session's daemon."""
import errno
import os
import signal
import struct
import subprocess
import time

import pytest

import ipcf
import ipcf.rpc as rpc
from conftest import BUILD, TREE, plain_env

SHAPES_X = r"""
/* shapes.x — the test interface of python/tests/test_rpc.py */
const MAXLABEL = 16;
typedef string label<MAXLABEL>;
enum color { RED = 1, GREEN = 2, BLUE = 3 };
struct point { int x; int y; };
union paint switch (color c) {
case RED:
case GREEN:
        unsigned int shade;
case BLUE:
        void;
};
struct shape {
        label name;
        paint p;
        point pts<4>;
        opaque tag[3];
        opaque blob<>;
        point *origin;
        bool filled;
        unsigned hyper id;
        double scale;
};
union area_res switch (int err) {
case 0:
        hyper area;
default:
        void;
};
program SHAPES_PROG {
        version SHAPES_V1 {
                [idempotent] hyper ADD(hyper, hyper) = 1;
                shape ECHO(shape) = 2;
                area_res AREA(shape) = 3;
                int FAIL(int) = 4;
                int SLEEP(int) = 5;
                int MISSING(int) = 6;
        } = 1;
        version SHAPES_V2 {
                hyper ADD(hyper, hyper) = 1;
        } = 2;
} = 0x20001234;
"""

SERVER_C = r"""
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "shapes.h"

static int add(ipcf_rpc_ctx *ctx, const add_v1_args *in, int64_t *out, void *user) {
        *out = in->arg1 + in->arg2;
        return 0;
}

static int echo(ipcf_rpc_ctx *ctx, const shape *in, shape *out, void *user) {
        ipcf_xdr e, d;   /* a deep copy: encode, decode */
        ipcf_xdr_encoder(&e, NULL, 0);
        int r = shape_encode(&e, in);
        if (r == 0) {
                ipcf_xdr_decoder(&d, e.buf, e.pos);
                r = shape_decode(&d, out);
        }
        ipcf_xdr_release(&e);
        return r;
}

static int area(ipcf_rpc_ctx *ctx, const shape *in, area_res *out, void *user) {
        if (in->pts.pts_len < 2) {
                out->err = 33;
                return 0;
        }
        const point *a = &in->pts.pts_val[0], *b = &in->pts.pts_val[1];
        out->err = 0;
        out->area_res_u.area = (int64_t)(b->x - a->x) * (b->y - a->y);
        return 0;
}

static int fail(ipcf_rpc_ctx *ctx, const int32_t *in, int32_t *out, void *user) {
        return -*in;
}

static int snooze(ipcf_rpc_ctx *ctx, const int32_t *in, int32_t *out, void *user) {
        struct timespec t = { *in / 1000, (long)(*in % 1000) * 1000000 }; /* deadline or not */
        nanosleep(&t, NULL);
        *out = *in;
        return 0;
}

int main(int argc, char **argv) {
        static const shapes_v1_handlers h = { .add_v1 = add, .echo = echo, .area = area, .fail = fail,
                                              .sleep = snooze };
        ipcf_rpc_server *s;
        int r = ipcf_rpc_server_new(argv[1], NULL, &s);
        if (r == 0)
                r = shapes_v1_serve(s, &h, NULL);
        if (r == 0)
                r = ipcf_rpc_server_run(s, 2, -1);
        return r < 0;
}
"""


def _sanitizer():
    """(compiler, flags) for a program linked with this build's library: the
    sanitizer the library was built with (test-python.c preloads its runtime
    into python), else none."""
    pre = os.environ.get("LD_PRELOAD", "")
    cc = os.environ.get("CC") or ("clang" if "libclang_rt" in pre else "cc")
    if "asan" in pre:
        return cc, ["-fsanitize=address,undefined"]
    if "tsan" in pre:
        return cc, ["-fsanitize=thread"]
    return cc, []


def _start(args, name):
    """A server process on this session's daemon, once its name is up."""
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=plain_env())
    deadline = time.monotonic() + 10
    while True:
        try:
            rpc.Client(name, timeout=1).close()
            return proc
        except (ipcf.NameNotFoundError, ipcf.IpcfTimeoutError):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("%s did not come up" % args[0])
            time.sleep(0.02)


def _stop(proc):
    proc.kill()
    proc.wait(5)


@pytest.fixture(scope="module")
def shapes_server_exe(tmp_path_factory):
    d = tmp_path_factory.mktemp("shapes")
    (d / "shapes.x").write_text(SHAPES_X)
    (d / "server.c").write_text(SERVER_C)
    subprocess.run([os.path.join(BUILD, "bin", "ipcf-idl"), "-o", str(d), str(d / "shapes.x")], check=True,
                   timeout=60, env=plain_env())
    libdir = os.path.join(BUILD, "lib")
    cc, san = _sanitizer()
    subprocess.run([cc, "-std=gnu11"] + san + ["-I", os.path.join(TREE, "include"), "-I", str(d), "-o",
                   str(d / "server"), str(d / "server.c"), str(d / "shapes.c"), "-L", libdir, "-l:libipcf.so.1",
                   "-Wl,-rpath," + libdir, "-lpthread"], check=True, timeout=120, env=plain_env())
    return str(d / "server")


@pytest.fixture
def shapes(shapes_server_exe, name):
    proc = _start([shapes_server_exe, name], name)
    yield name, proc
    _stop(proc)


@pytest.fixture
def calc(name):
    proc = _start([os.path.join(BUILD, "examples", "calc-server"), name], name)
    yield name
    _stop(proc)


SHAPE = {"name": "sq", "p": {"c": "GREEN", "shade": 7}, "pts": [{"x": 1, "y": 2}, {"x": 4, "y": 6}],
         "tag": b"abc", "blob": bytes(range(256)) * 5, "origin": {"x": -1, "y": -2}, "filled": True,
         "id": 2**64 - 1, "scale": 0.5}


def test_the_calculator_adds_and_divides(calc):
    with rpc.Client(calc) as c:
        assert c.call("ADD", {"a": 40, "b": 2}) == 42
        assert c.call("mul", {"a": -3, "b": 2**40}) == -3 * 2**40
        assert c.call("DIV", {"a": 7, "b": 2}) == {"err": 0, "value": 3}
        assert c.call("DIV", {"a": 1, "b": 0}) == {"err": errno.EDOM}  # the void arm
        assert c.procedures() == {(0x20000001, 1): ["ACCUMULATE", "ADD", "DIV", "MUL"]}
        assert "program CALC_PROG" in c.describe()
    assert rpc.call(calc, "ADD", {"a": 1, "b": 2}) == 3


def test_structs_unions_arrays_strings_opaque_and_optional_data(shapes):
    name, _ = shapes
    with rpc.Client(name) as c:
        assert c.call("ADD", 2**62, 2**62 - 1) == 2**63 - 1  # two arguments
        assert c.call("ECHO", SHAPE) == SHAPE
        other = dict(SHAPE, p={"c": "BLUE"}, pts=[], tag=b"\0\0\0", blob=b"", origin=None, filled=False,
                     name="")
        assert c.call("echo", other) == other
        assert c.call("AREA", SHAPE) == {"err": 0, "area": 12}
        assert c.call("AREA", other) == {"err": 33}
        # values that do not fit their types go nowhere
        for bad in (dict(SHAPE, name="x" * 17), dict(SHAPE, tag=b"ab"), dict(SHAPE, pts=[{"x": 0, "y": 0}] * 5),
                    dict(SHAPE, p={"c": "PINK"}), dict(SHAPE, id=-1), dict(SHAPE, extra=1)):
            with pytest.raises((ValueError, TypeError)):
                c.call("ECHO", bad)
        with pytest.raises(TypeError):
            c.call("ADD", 1)


def test_a_handler_error_is_a_remote_error(shapes):
    name, _ = shapes
    with rpc.Client(name) as c:
        with pytest.raises(ipcf.RemoteError) as ei:
            c.call("FAIL", errno.EDOM)
        assert ei.value.errno == errno.EREMOTEIO and ei.value.code == -errno.EDOM


def test_unknown_procedures(shapes):
    name, _ = shapes
    with rpc.Client(name) as c:
        with pytest.raises(rpc.UnknownProcedureError):
            c.call("NOSUCH", 1)  # not in the description: nothing is sent
        with pytest.raises(rpc.UnknownProcedureError) as ei:
            c.call("MISSING", 1)  # described, but the server has no handler
        assert ei.value.errno == errno.EOPNOTSUPP
        assert c.call("ADD", 1, 1) == 2  # the session goes on


def test_a_version_the_server_does_not_serve(shapes):
    name, _ = shapes
    with rpc.Client(name) as c:
        assert c.procedures()[(0x20001234, 2)] == ["ADD"]  # described: the whole file
        with pytest.raises(rpc.VersionMismatchError) as ei:
            c.call("ADD", 1, 2, version=2)
        assert (ei.value.errno, ei.value.low, ei.value.high) == (errno.EPROTONOSUPPORT, 1, 1)
        with pytest.raises(rpc.VersionMismatchError) as ei:
            c.call("ADD", 1, 2, version=9)  # not even described: asked all the same
        assert (ei.value.low, ei.value.high) == (1, 1)
        assert c.call("ADD", 1, 2, version=1) == 3


def test_a_deadline_after_sending_is_outcome_unknown(shapes):
    name, proc = shapes
    with rpc.Client(name) as c:
        t0 = time.monotonic()
        with pytest.raises(rpc.OutcomeUnknownError) as ei:
            c.call("SLEEP", 1000, timeout=0.2)  # a handler that overruns the deadline
        assert ei.value.errno == errno.ENOLINK and "outcome unknown" in str(ei.value)
        assert not isinstance(ei.value, TimeoutError)  # distinct from "not run"
        assert time.monotonic() - t0 < 4
        assert c.call("SLEEP", 1, timeout=5) == 1
        proc.send_signal(signal.SIGSTOP)  # a server that answers nothing
        try:
            with pytest.raises(rpc.OutcomeUnknownError):
                c.call("ADD", 1, 2, timeout=0.2)
            with pytest.raises(ipcf.IpcfTimeoutError):
                c.describe(timeout=0.2)  # nothing ran: a plain timeout
        finally:
            proc.send_signal(signal.SIGCONT)
        assert c.call("ADD", 1, 2, timeout=5) == 3


def test_no_server_and_bad_descriptions(name):
    with pytest.raises(ipcf.NameNotFoundError):
        rpc.Client(name, timeout=1)
    with pytest.raises(rpc.InterfaceError) as ei:
        rpc.Interface("struct s { int a; };\n#include <x.h>\n")
    assert ei.value.line == 2
    with pytest.raises(rpc.InterfaceError):
        rpc.Interface("struct s { int a }")
    i = rpc.Interface("const N = 0x10; typedef opaque b<N>;\n%pass through\nenum e { A = 1, B = N };")
    assert i.value("B") == 16 and i.types["b"].kind == "opaque_var"


def test_replies_are_decoded_with_bounds():
    i = rpc.Interface("typedef int v<2>; typedef string s<3>; struct p { int *next; };")
    c = rpc.Codec(i)

    def dec(t, data):
        d = rpc._Decoder(data)
        return c.decode(rpc.Decl("plain", ("ref", t)), d)
    assert dec("v", b"\0\0\0\2\0\0\0\1\0\0\0\2") == [1, 2]
    for t, data in (("v", b"\0\0\0\3" + b"\0" * 12), ("v", b"\0\0\0\2\0\0\0\1"), ("s", b"\0\0\0\2ab\0\1"),
                    ("s", b"\0\0\0\2a\0\0\0"), ("p", b"\0\0\0\2")):
        with pytest.raises(ValueError):
            dec(t, data)


def test_a_union_whose_arm_is_named_like_its_discriminant():
    """The discriminant's key is then "switch", both ways (as ipcf rpc call's
    JSON): before, decoding wrote the arm over the discriminant."""
    i = rpc.Interface("union kinded switch (int kind) { case 1: int kind; case 2: string name<>; };")
    c = rpc.Codec(i)
    t = rpc.Decl("plain", ("ref", "kinded"))
    for v, data in (({"switch": 1, "kind": 41}, b"\0\0\0\1\0\0\0\x29"),
                    ({"switch": 2, "name": "hi"}, b"\0\0\0\2\0\0\0\2hi\0\0")):
        out = bytearray()
        c.encode(t, v, out)
        assert bytes(out) == data
        assert c.decode(t, rpc._Decoder(data)) == v
    with pytest.raises(TypeError):
        c.encode(t, {"kind": 1}, bytearray())


def test_lists_of_any_length_and_bounded_nesting():
    """A list (a struct whose last member is optional data of its own type) is
    walked, as by the C code ipcf-idl generates: 100,000 nodes encode to XDR's
    bytes and decode back; other recursion still nests and is bounded."""
    i = rpc.Interface("struct node { int v; string tag<>; node *next; };"
                      "struct tree { int v; tree *l; tree *r; };")
    c = rpc.Codec(i)
    t = rpc.Decl("plain", ("ref", "node"))
    head, want = None, bytearray()
    for k in range(100000):
        head = {"v": k, "tag": "t", "next": head}
    for k in reversed(range(100000)):
        want += struct.pack(">iI", k, 1) + b"t\0\0\0" + struct.pack(">I", 1 if k else 0)
    out = bytearray()
    c.encode(t, head, out)
    assert bytes(out) == bytes(want)
    back, n = c.decode(t, rpc._Decoder(bytes(out))), 0
    while back is not None:
        assert back["v"] == 99999 - n and back["tag"] == "t"
        back, n = back["next"], n + 1
    assert n == 100000
    with pytest.raises(ValueError):  # cut short
        c.decode(t, rpc._Decoder(bytes(out[:-4])))
    with pytest.raises(TypeError):  # a node that is not a dict
        c.encode(t, {"v": 1, "tag": "", "next": 5}, bytearray())
    tt = rpc.Decl("plain", ("ref", "tree"))
    left = right = None
    for k in range(300):
        left = {"v": k, "l": left, "r": None}
        right = {"v": k, "l": None, "r": right}
    with pytest.raises(ValueError):
        c.encode(tt, left, bytearray())
    out = bytearray()
    c.encode(tt, right, out)
    assert len(out) == 300 * 12
    assert c.decode(tt, rpc._Decoder(bytes(out))) == right


def test_nesting_is_counted_as_in_c():
    """256 structs one inside another encode and decode, as in C
    (test-rpc-xdr nesting_bound_is_exact, the same tree); 257 are refused both
    ways. A typedef is a level too (its T_encode enters one in C); arrays and
    optional data are not: before, each declaration counted, and a left spine
    of 129 nodes was refused though C sends 256."""
    i = rpc.Interface("struct tree { int v; tree *l; tree *r; };"
                      "typedef tree *ptree; struct box { ptree inner<>; };")
    c = rpc.Codec(i)
    tt = rpc.Decl("plain", ("ref", "tree"))

    def spine(n):
        t = None
        for k in range(n):
            t = {"v": k, "l": t, "r": None}
        return t

    def raw(n):  # XDR's bytes of spine(n), built without the codec
        b = bytearray()
        for k in range(n):
            b += struct.pack(">iI", n - 1 - k, 1 if k < n - 1 else 0)
        return bytes(b + struct.pack(">I", 0) * n)

    out = bytearray()
    c.encode(tt, spine(256), out)
    assert bytes(out) == raw(256)
    assert c.decode(tt, rpc._Decoder(raw(256))) == spine(256)
    with pytest.raises(ValueError, match="nested deeper than 256"):
        c.encode(tt, spine(257), bytearray())
    with pytest.raises(ValueError, match="nested deeper than 256"):
        c.decode(tt, rpc._Decoder(raw(257)))
    # trees in a box through an array of a typedef: the box, the typedef and
    # 254 trees are 256 levels (box_encode in C: 254 fine, 255 -ELOOP)
    bt = rpc.Decl("plain", ("ref", "box"))
    v = {"inner": [spine(254), None]}
    out = bytearray()
    c.encode(bt, v, out)
    assert c.decode(bt, rpc._Decoder(bytes(out))) == v
    with pytest.raises(ValueError, match="nested deeper than 256"):
        c.encode(bt, {"inner": [spine(255)]}, bytearray())
    out = bytearray()
    c.encode(rpc.Decl("plain", ("ref", "ptree")), spine(255), out)
    with pytest.raises(ValueError, match="nested deeper than 256"):
        c.decode(bt, rpc._Decoder(struct.pack(">I", 1) + bytes(out)))  # count, then the ptree


def test_the_declarations_match_the_header(tmp_path):
    """rpc.py's own declarations (its structs) against include/ipcf.h."""
    pairs = []
    for s in ("ipcf_rpc_info", "ipcf_rpc_opts", "ipcf_rpc_client_opts"):
        t = rpc.ffi.typeof(s)
        pairs.append(("sizeof(%s)" % s, rpc.ffi.sizeof(t)))
        pairs += [("offsetof(%s, %s)" % (s, f), ft.offset) for f, ft in t.fields]
    pairs += [("IPCF_RPC_IDEMPOTENT", rpc.IDEMPOTENT), ("IPCF_RPC_ONEWAY", rpc.ONEWAY),
              ("IPCF_EUNKNOWN", errno.ENOLINK)]
    src = tmp_path / "abi.c"
    src.write_text("#include <errno.h>\n#include <stddef.h>\n#include <stdio.h>\n#include \"ipcf.h\"\n"
                   "int main(void) {\n" +
                   "".join('printf("%%llu\\n", (unsigned long long)(%s));\n' % e for e, _ in pairs) + "}\n")
    subprocess.run([_sanitizer()[0], "-I", os.path.join(TREE, "include"), "-o", str(tmp_path / "abi"), str(src)],
                   check=True, timeout=60, env=plain_env())
    got = [int(v) for v in subprocess.run([str(tmp_path / "abi")], check=True, capture_output=True,
                                          timeout=10, env=plain_env()).stdout.split()]
    assert got == [v for _, v in pairs]
