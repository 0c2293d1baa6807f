"""rpc — call any procedure of an RPC server (ipcf-idl, docs/RPC.md) by name.

The server describes its interface (the .x files it was generated from, as
`ipcf rpc describe NAME` prints them); this module reads that description,
encodes the arguments in XDR (RFC 4506) by the procedure's argument types,
makes the call through the C runtime (sessions, slots, reply cache: the same
exactly-once calls as a generated C stub) and decodes the result:

    with ipcf.rpc.Client("calc") as calc:
        calc.call("ADD", {"a": 40, "b": 2})          # -> 42
        calc.call("DIV", {"a": 1, "b": 0})           # -> {"err": 33}

Python values for XDR types (both ways; the mapping of `ipcf rpc call`'s JSON):
    int, unsigned int, hyper, unsigned hyper   int (range checked)
    bool                                       bool
    enum                                       its enumerator's name (str; an int is taken too)
    float, double                              float
    quadruple                                  bytes (its 16 bytes)
    string<N>                                  str (UTF-8; bytes are taken too)
    opaque x[N], opaque x<N>                   bytes
    T x[N], T x<N>                             list
    T *x (optional)                            None or the value
    struct                                     dict of its members
    union                                      dict of the discriminant and the arm:
                                               {"err": 0, "value": 5}; the discriminant's
                                               key is "switch" when an arm has its name
    void                                       None
A procedure of several arguments takes them as positional arguments.
Server (ipcf.rpc_server) serves an interface from Python functions the same
way: the C runtime's server, these values, this codec.

Errors raise IpcfError subclasses (ipcf.errors), with these of RPC's own:
    UnknownProcedureError   the description or the server has no such procedure
    VersionMismatchError    the server does not serve that version: .low, .high
    OutcomeUnknownError     the request was sent and its outcome cannot be known
                            (the server died, or the deadline passed, after sending)
    RemoteError             the handler failed: .code is its negative errno
    IpcfTimeoutError        the deadline passed and nothing was run
Values that do not fit their type raise TypeError or ValueError before
anything is sent. Decoding a reply checks every length against its bound
and against the bytes left, and nesting: 256 structs and unions one inside
another, counted as the C code ipcf-idl generates counts them (arrays,
optional data and typedefs add no level), so what one side encodes the other
decodes; a
list (a struct whose last member is optional data of its own type: nested dicts
whose last key is the next node or None) is walked, not nested, so a list of
any length encodes and decodes, as in C.
"""
import errno as _errno
import os
import re
import struct

import cffi

from . import _ffi
from ._timeout import to_ms
from .errors import IpcfError, alloc_error, error, reason_before
from .handle import _name_arg

_CDEF = """
typedef struct ipcf_rpc_client ipcf_rpc_client;
typedef struct ipcf_rpc_info {
    int remote_error;
    uint32_t vers_low;
    uint32_t vers_high;
    uint32_t transmissions;
    uint32_t from_cache;
    uint64_t incarnation;
} ipcf_rpc_info;
typedef struct ipcf_rpc_opts {
    int timeout_ms;
    ipcf_rpc_info *info;
} ipcf_rpc_opts;
typedef struct ipcf_rpc_client_opts {
    uint32_t slots;
    int default_timeout_ms;
    uint32_t max_msg;
} ipcf_rpc_client_opts;
int ipcf_rpc_client_new(const char *service, const ipcf_rpc_client_opts *opts, ipcf_rpc_client **ret);
ipcf_rpc_client *ipcf_rpc_client_free(ipcf_rpc_client *c);
int ipcf_rpc_call_raw(ipcf_rpc_client *c, uint32_t prog, uint32_t vers, uint32_t proc, uint32_t flags,
                      const void *args, size_t len, const ipcf_rpc_opts *o, void **ret_res, size_t *ret_len);
int ipcf_rpc_describe(ipcf_rpc_client *c, int timeout_ms, char **ret_text);
void free(void *p);
"""
MINOR_NEEDED = 1  # the RPC functions came with libipcf 1.1
IDEMPOTENT, ONEWAY = 1, 2
MAX_DEPTH = 256  # IPCF_XDR_MAX_DEPTH: structs and unions one inside another


def _enter(depth):
    """The nesting depth inside one more struct or union (each is a level, as
    ipcf_xdr_enter counts in C), or ValueError past MAX_DEPTH."""
    if depth >= MAX_DEPTH:
        raise ValueError("nested deeper than %d" % MAX_DEPTH)
    return depth + 1

# Our own declarations on the library the package loaded (the same dlopen
# handle: one library, one state), and libc's free() for what it allocates.
ffi = cffi.FFI()
ffi.cdef(_CDEF)
_lib = ffi.dlopen(os.environ.get("IPCF_LIBRARY") or "libipcf.so.%d" % _ffi.MAJOR)
_libc = ffi.dlopen(None)


class UnknownProcedureError(IpcfError, LookupError):
    """No such procedure in the description, or the server has none by its number."""


class VersionMismatchError(IpcfError):
    """The server does not serve that version of the program: it serves
    .low .. .high (0, 0: not the program at all)."""
    low = high = 0


class OutcomeUnknownError(IpcfError):
    """The request was sent, and whether it ran cannot be known."""


# ---- the interface language (RFC 4506 section 6, RFC 5531, our annotations) ----

class InterfaceError(ValueError):
    """A description that does not parse: .line says where."""

    def __init__(self, msg, line):
        super().__init__("line %d: %s" % (line, msg))
        self.line = line


_TOKEN = re.compile(r"\s+|/\*.*?\*/|//[^\n]*|(0[xX][0-9a-fA-F]+|-?\d+)|([A-Za-z_]\w*)|(.)", re.S)
_KEYWORDS = {"bool", "case", "const", "default", "double", "quadruple", "enum", "float", "hyper", "int",
             "opaque", "string", "struct", "switch", "typedef", "union", "unsigned", "void", "program",
             "version"}
_INT = {"int": (-2**31, 2**31, ">i"), "unsigned int": (0, 2**32, ">I"),
        "hyper": (-2**63, 2**63, ">q"), "unsigned hyper": (0, 2**64, ">Q")}


def _tokens(text):
    """(kind, value, line) of every token; kind is num, id, punct or eof."""
    lines = text.splitlines(True)
    for n, ln in enumerate(lines):
        if ln.lstrip().startswith("%"):  # rpcgen's pass-through lines
            lines[n] = "\n"
        elif ln.lstrip().startswith("#"):
            raise InterfaceError("a preprocessor line (there is no preprocessor)", n + 1)
    text, toks, line, pos = "".join(lines), [], 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        num, ident, punct = m.group(1), m.group(2), m.group(3)
        if num is not None:
            try:
                toks.append(("num", int(num, 8) if re.match(r"-?0\d", num) else int(num, 0), line))
            except ValueError:
                raise InterfaceError("a bad number %r" % num, line) from None
        elif ident is not None:
            toks.append(("id", ident, line))
        elif punct is not None:
            toks.append(("punct", punct, line))
        line += m.group(0).count("\n")
        pos = m.end()
    toks.append(("eof", None, line))
    return toks


class Decl:
    """A declaration's shape: kind is plain, fixed, var, optional, opaque_fixed,
    opaque_var, string or void; base the element type; bound its count/bound."""
    __slots__ = ("kind", "base", "bound", "name")

    def __init__(self, kind, base=None, bound=None, name=None):
        self.kind, self.base, self.bound, self.name = kind, base, bound, name


class Procedure:
    """One procedure: number, name, result (Decl), args (Decls), flags, timeout_ms,
    and the numbers of its program and version."""

    def __init__(self, name, number, result, args, attrs, prog, vers):
        self.name, self.number, self.result, self.args = name, number, result, args
        self.flags = (IDEMPOTENT if "idempotent" in attrs else 0) | (ONEWAY if "oneway" in attrs else 0)
        self.timeout_ms = attrs.get("timeout", 0)
        self.prog, self.vers = prog, vers

    def __repr__(self):
        return "<Procedure %s = %d of program %#x version %d>" % (self.name, self.number, self.prog, self.vers)


class Interface:
    """An interface's types, constants and programs, from .x text (a server's
    description: several files one after the other are fine)."""

    def __init__(self, text):
        self.consts, self.types, self.programs, self.programs_by_number = {}, {}, {}, {}
        self._t = _tokens(text)
        self._i = 0
        while self._peek()[0] != "eof":
            self._definition()

    # -- tokens
    def _peek(self, k=0):
        return self._t[min(self._i + k, len(self._t) - 1)]

    def _next(self):
        t = self._peek()
        self._i += 1
        return t

    def _fail(self, what):
        kind, val, line = self._peek()
        raise InterfaceError("%s, not %s" % (what, "the end" if kind == "eof" else repr(val)), line)

    def _accept(self, val):
        if self._peek()[1] == val and self._peek()[0] != "num":
            self._i += 1
            return True
        return False

    def _expect(self, val):
        if not self._accept(val):
            self._fail("expected %r" % val)

    def _ident(self):
        kind, val, _ = self._peek()
        if kind != "id" or val in _KEYWORDS:
            self._fail("expected a name")
        self._i += 1
        return val

    def _value(self):
        """A number or a constant's name (resolved when used)."""
        kind, val, _ = self._peek()
        if kind == "num":
            self._i += 1
            return val
        return self._ident()

    def value(self, v, seen=()):
        """The number a constant (a name) or number stands for."""
        if isinstance(v, int):
            return v
        if v in ("TRUE", "FALSE") and v not in self.consts:
            return int(v == "TRUE")
        if v not in self.consts or v in seen:
            raise InterfaceError("%r is not a constant" % v, 0)
        return self.value(self.consts[v], seen + (v,))

    # -- definitions
    def _attrs(self):
        attrs = {}
        while self._accept("["):
            while True:
                a = self._ident()
                if a == "timeout":
                    self._expect("(")
                    attrs[a] = self.value(self._value())
                    self._expect(")")
                else:
                    attrs[a] = True
                if not self._accept(","):
                    break
            self._expect("]")
        return attrs

    def _definition(self):
        attrs = self._attrs()
        kw = self._peek()[1]
        if self._accept("const"):
            name = self._ident()
            self._expect("=")
            self.consts[name] = self._value()
        elif self._accept("typedef"):
            d = self._declaration()
            if d.kind == "void":
                self._fail("a typedef of void")
            self.types[d.name] = d
        elif kw in ("enum", "struct", "union") and self._peek(1)[0] == "id" and \
                self._peek(2)[1] == ("switch" if kw == "union" else "{"):
            self._i += 1
            name = self._ident()
            self.types[name] = Decl("plain", self._body(kw, name))
        elif self._accept("program"):
            self._program(attrs)
            return
        else:
            self._fail("expected a definition")
        self._expect(";")

    def _body(self, kw, name):
        if kw == "enum":
            self._expect("{")
            names = {}
            while True:
                n = self._ident()
                self._expect("=")
                v = self._value()
                self.consts[n] = v
                names[n] = v
                if not self._accept(","):
                    break
            self._expect("}")
            return ("enum", names)
        if kw == "struct":
            self._expect("{")
            members = []
            while not self._accept("}"):
                members.append(self._declaration())
                self._expect(";")
            if not members:
                self._fail("a struct needs a member")
            return ("struct", members)
        self._expect("switch")
        self._expect("(")
        disc = self._declaration()
        self._expect(")")
        self._expect("{")
        cases, default = [], None
        while not self._accept("}"):
            if self._accept("default"):
                self._expect(":")
                default = self._declaration()
                self._expect(";")
                continue
            values = []
            while self._accept("case"):
                values.append(self._value())
                self._expect(":")
            if not values:
                self._fail("expected case or default")
            arm = self._declaration()
            self._expect(";")
            cases.append((values, arm))
        return ("union", disc, cases, default)

    def _type_spec(self):
        """A type specifier: a primitive name, ('enum'|'struct'|'union', ...), or a name to look up."""
        if self._accept("unsigned"):
            if self._accept("hyper"):
                return "unsigned hyper"
            self._accept("int")
            return "unsigned int"
        for prim in ("int", "hyper", "float", "double", "quadruple", "bool"):
            if self._accept(prim):
                return prim
        kw = self._peek()[1]
        if kw in ("enum", "struct", "union") and self._peek()[0] == "id":
            self._i += 1
            if self._peek()[0] == "id" and self._peek()[1] not in _KEYWORDS:
                return ("ref", self._ident())  # struct NAME: a reference
            return self._body(kw, None)
        return ("ref", self._ident())

    def _declaration(self):
        if self._accept("void"):
            return Decl("void")
        if self._accept("opaque") or self._peek()[1] == "string":
            string = self._accept("string")
            name = self._ident()
            if self._accept("["):
                if string:
                    self._fail("a string is <N> or <>")
                n = self._value()
                self._expect("]")
                return Decl("opaque_fixed", None, n, name)
            self._expect("<")
            n = None if self._peek()[1] == ">" else self._value()
            self._expect(">")
            return Decl("string" if string else "opaque_var", None, n, name)
        base = self._type_spec()
        if self._accept("*"):
            return Decl("optional", base, None, self._ident())
        name = self._ident()
        if self._accept("["):
            n = self._value()
            self._expect("]")
            return Decl("fixed", base, n, name)
        if self._accept("<"):
            n = None if self._peek()[1] == ">" else self._value()
            self._expect(">")
            return Decl("var", base, n, name)
        return Decl("plain", base, None, name)

    def _program(self, attrs):
        pname = self._ident()
        self._expect("{")
        versions = []
        while not self._accept("}"):
            vattrs = dict(attrs)
            vattrs.update(self._attrs())
            self._expect("version")
            vname = self._ident()
            self._expect("{")
            procs = []
            while not self._accept("}"):
                pattrs = dict(vattrs)
                pattrs.update(self._attrs())
                result = Decl("void") if self._accept("void") else Decl("plain", self._type_spec())
                name = self._ident()
                self._expect("(")
                args = []
                if self._peek()[1] == "void" and self._peek(1)[1] == ")":
                    self._i += 1
                else:
                    while True:
                        args.append(Decl("plain", self._type_spec()))
                        if not self._accept(","):
                            break
                self._expect(")")
                self._expect("=")
                procs.append((name, self._value(), result, args, pattrs))
                self._expect(";")
            self._expect("=")
            versions.append((vname, self._value(), procs))
            self._expect(";")
        self._expect("=")
        number = self.value(self._value())
        self._expect(";")
        prog = self.programs.setdefault(pname, {"number": number, "versions": {}})
        self.programs_by_number[number] = prog["versions"]
        for vname, vnum, procs in versions:
            v = prog["versions"].setdefault(self.value(vnum), {})
            for name, num, result, args, pattrs in procs:
                v[name] = Procedure(name, self.value(num), result, args,
                                    {k: (True if k != "timeout" else self.value(a))
                                     for k, a in pattrs.items()}, number, self.value(vnum))

    # -- lookup
    def procedure(self, name, version=None):
        """The procedure named name (any case): the highest version that has
        it, or the given version's (None if that version lacks it)."""
        found = []
        for prog in self.programs.values():
            for vnum, procs in prog["versions"].items():
                for pname, p in procs.items():
                    if pname.lower() == name.lower():
                        found.append((vnum, p))
        if version is not None:
            found = [f for f in found if f[0] == version]
        return max(found, key=lambda f: f[0])[1] if found else None

    def resolve(self, t):
        """Follow named references to what they name: a Decl."""
        return self.resolve_nested(t, 0)[0]

    def resolve_nested(self, t, depth):
        """resolve(t), and the nesting depth past the typedefs followed (each
        is a level, as in the C code ipcf-idl generates: its T_encode enters
        one; ValueError past MAX_DEPTH)."""
        seen = 0
        while isinstance(t, tuple) and t[0] == "ref":
            if t[1] not in self.types:
                raise InterfaceError("undefined type %r" % t[1], 0)
            d = self.types[t[1]]
            seen += 1
            if seen > 64:
                raise InterfaceError("typedefs in a loop at %r" % t[1], 0)
            if d.name is not None:  # a typedef (structs, unions, enums have none)
                depth = _enter(depth)
            if d.kind != "plain":
                return d, depth
            t = d.base
        return Decl("plain", t), depth


# ---- XDR (RFC 4506) ------------------------------------------------------------

class _Decoder:
    def __init__(self, buf):
        self.buf, self.pos = memoryview(buf), 0

    def take(self, n):
        if n > len(self.buf) - self.pos:
            raise ValueError("the reply is truncated")
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def padded(self, n):
        b = bytes(self.take(n))
        pad = self.take((4 - n % 4) % 4)
        if any(pad):
            raise ValueError("padding that is not zero")
        return b


class Codec:
    """XDR of an Interface's types with Python values (see the module's table)."""

    def __init__(self, iface):
        self.i = iface

    # -- encoding
    def encode(self, decl, v, out, depth=0):
        k = decl.kind
        what = decl.name or "value"
        if k == "void":
            if v is not None:
                raise TypeError("%s: void takes None" % what)
        elif k == "plain":
            self._enc_type(decl.base, v, out, depth, what)
        elif k == "optional":
            out += struct.pack(">I", v is not None)
            if v is not None:
                self._enc_type(decl.base, v, out, depth, what)
        elif k in ("fixed", "var"):
            if not isinstance(v, (list, tuple)):
                raise TypeError("%s: an array is a list" % what)
            self._count(decl, len(v), out, what)
            for e in v:
                self._enc_type(decl.base, e, out, depth, what)
        else:
            if k == "string":
                if isinstance(v, str):
                    v = v.encode("utf-8", "surrogateescape")
                if not isinstance(v, (bytes, bytearray)) or b"\0" in v:
                    raise TypeError("%s: a string is a str without NUL" % what)
            elif not isinstance(v, (bytes, bytearray, memoryview)):
                raise TypeError("%s: opaque data is bytes" % what)
            v = bytes(v)
            self._count(decl, len(v), out, what)
            out += v + b"\0" * ((4 - len(v) % 4) % 4)

    def _count(self, decl, n, out, what):
        bound = None if decl.bound is None else self.i.value(decl.bound)
        if decl.kind in ("fixed", "opaque_fixed"):
            if n != bound:
                raise ValueError("%s: %d elements where the type has %d" % (what, n, bound))
            return
        if n > (2**32 - 1 if bound is None else bound):
            raise ValueError("%s: %d elements, more than its bound %d" % (what, n, bound))
        out += struct.pack(">I", n)

    def _enc_type(self, t, v, out, depth, what):
        d, depth = self.i.resolve_nested(t, depth)
        if d.kind != "plain":
            return self.encode(Decl(d.kind, d.base, d.bound, what), v, out, depth)
        t = d.base
        if isinstance(t, str) and t in _INT:
            lo, hi, fmt = _INT[t]
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError("%s: %s is an int" % (what, t))
            if not lo <= v < hi:
                raise ValueError("%s: %d is out of range of %s" % (what, v, t))
            out += struct.pack(fmt, v)
        elif t == "bool":
            if not isinstance(v, bool) and v not in (0, 1):
                raise TypeError("%s: bool is True or False" % what)
            out += struct.pack(">I", int(v))
        elif t in ("float", "double"):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError("%s: %s is a float" % (what, t))
            out += struct.pack(">f" if t == "float" else ">d", v)
        elif t == "quadruple":
            if not isinstance(v, (bytes, bytearray)) or len(v) != 16:
                raise TypeError("%s: quadruple is 16 bytes" % what)
            out += bytes(v)
        elif t[0] == "enum":
            out += struct.pack(">i", self._enum_value(t, v, what))
        elif t[0] == "struct":
            tail, depth = self._list_tail(t), _enter(depth)
            while True:  # a list's nodes one after the other, each a level
                if not isinstance(v, dict):
                    raise TypeError("%s: a struct is a dict" % what)
                extra = set(v) - {m.name for m in t[1]}
                if extra:
                    raise ValueError("%s: no member %s" % (what, ", ".join(sorted(extra))))
                for m in t[1]:
                    if m.name not in v:
                        raise ValueError("%s: member %s is missing" % (what, m.name))
                    if m is not tail:
                        self.encode(m, v[m.name], out, depth)
                if tail is None:
                    break
                v = v[tail.name]
                out += struct.pack(">I", v is not None)
                if v is None:
                    break
        else:  # union
            _, disc, cases, default = t
            key, depth = self._disc_key(disc, cases, default), _enter(depth)
            if not isinstance(v, dict) or key not in v:
                raise TypeError("%s: a union is a dict with its discriminant %r" % (what, key))
            dv = self._disc_value(disc, v[key], what)
            self.encode(Decl("plain", disc.base, None, disc.name), v[key], out, depth)
            arm = self._arm(cases, default, dv, what)
            extra = set(v) - {key} - ({arm.name} if arm.kind != "void" else set())
            if extra:
                raise ValueError("%s: no member %s in this case" % (what, ", ".join(sorted(extra))))
            if arm.kind != "void":
                if arm.name not in v:
                    raise ValueError("%s: member %s is missing" % (what, arm.name))
                self.encode(arm, v[arm.name], out, depth)

    def _list_tail(self, t):
        """A list's link: the last member of struct t when it is optional data of
        t itself (struct entry { ...; entry *next; }), walked in a loop as the C
        code generated by ipcf-idl does: a list of any length is no deeper than
        one node. None for other structs."""
        last = t[1][-1] if t[1] else None
        if last is None or last.kind != "optional":
            return None
        return last if self.i.resolve(last.base).base is t else None

    def _enum_value(self, t, v, what):
        names = t[1]
        if isinstance(v, str):
            if v not in names:
                raise ValueError("%s: %r is not one of %s" % (what, v, ", ".join(names)))
            return self.i.value(names[v])
        if isinstance(v, int) and not isinstance(v, bool) and v in [self.i.value(x) for x in names.values()]:
            return v
        raise ValueError("%s: %r is not one of %s" % (what, v, ", ".join(names)))

    def _disc_value(self, disc, v, what):
        d = self.i.resolve(disc.base)
        if isinstance(d.base, tuple) and d.base[0] == "enum":
            return self._enum_value(d.base, v, what)
        return int(v)

    @staticmethod
    def _disc_key(disc, cases, default):
        """The key of a union's discriminant: its name, or "switch" (a keyword,
        no arm's name) when an arm has its name too, as ipcf rpc call does."""
        arms = [arm for _, arm in cases] + ([default] if default is not None else [])
        return "switch" if any(arm.name == disc.name for arm in arms) else disc.name

    def _arm(self, cases, default, dv, what):
        for values, arm in cases:
            if dv in [self.i.value(x) for x in values]:
                return arm
        if default is None:
            raise ValueError("%s: no case for %r" % (what, dv))
        return default

    # -- decoding
    def decode(self, decl, dec, depth=0):
        k = decl.kind
        if k == "void":
            return None
        if k == "plain":
            return self._dec_type(decl.base, dec, depth)
        if k == "optional":
            flag = dec.u32()
            if flag > 1:
                raise ValueError("an optional flag that is not 0 or 1")
            return self._dec_type(decl.base, dec, depth) if flag else None
        bound = None if decl.bound is None else self.i.value(decl.bound)
        if k in ("fixed", "opaque_fixed"):
            n = bound
        else:
            n = dec.u32()
            if bound is not None and n > bound:
                raise ValueError("%d elements, more than the bound %d" % (n, bound))
        if k in ("fixed", "var"):
            if n * 4 > len(dec.buf) - dec.pos:  # every element takes 4 bytes at least
                raise ValueError("a count beyond the reply")
            return [self._dec_type(decl.base, dec, depth) for _ in range(n)]
        b = dec.padded(n)
        if k == "string":
            if b"\0" in b:
                raise ValueError("a string holds a NUL")
            return b.decode("utf-8", "surrogateescape")
        return b

    def _dec_type(self, t, dec, depth):
        d, depth = self.i.resolve_nested(t, depth)
        if d.kind != "plain":
            return self.decode(d, dec, depth)
        t = d.base
        if isinstance(t, str) and t in _INT:
            return struct.unpack(_INT[t][2], dec.take(8 if "hyper" in t else 4))[0]
        if t == "bool":
            v = dec.u32()
            if v > 1:
                raise ValueError("a bool that is not 0 or 1")
            return bool(v)
        if t in ("float", "double"):
            return struct.unpack(">f" if t == "float" else ">d", dec.take(4 if t == "float" else 8))[0]
        if t == "quadruple":
            return bytes(dec.take(16))
        if t[0] == "enum":
            v = struct.unpack(">i", dec.take(4))[0]
            for name, x in t[1].items():
                if self.i.value(x) == v:
                    return name
            raise ValueError("%d is not a value of the enum" % v)
        if t[0] == "struct":
            tail, depth = self._list_tail(t), _enter(depth)
            head = node = {}
            while True:  # a list's nodes one after the other, each a level
                for m in t[1]:
                    if m is not tail:
                        node[m.name] = self.decode(m, dec, depth)
                if tail is None:
                    return head
                flag = dec.u32()
                if flag > 1:
                    raise ValueError("an optional flag that is not 0 or 1")
                node[tail.name] = {} if flag else None
                if not flag:
                    return head
                node = node[tail.name]
        _, disc, cases, default = t
        depth = _enter(depth)
        dv = self.decode(Decl("plain", disc.base, None, disc.name), dec, depth)
        arm = self._arm(cases, default, self._disc_value(disc, dv, disc.name), "union")
        out = {self._disc_key(disc, cases, default): dv}
        if arm.kind != "void":
            out[arm.name] = self.decode(arm, dec, depth)
        return out


# ---- the client -----------------------------------------------------------------

_DEFAULT = object()


def _raise(r, name, proc, info, before):
    """The exception of call result r (negative errno); before: the last
    reason before the call (errors.alloc_error: the reason of the
    session's allocation, if the call made one and it failed with one)."""
    r = -r
    if r == _errno.ENOLINK:
        cls = OutcomeUnknownError
    elif r == _errno.EPROTONOSUPPORT:
        cls = VersionMismatchError
    elif r == _errno.EOPNOTSUPP:
        cls = UnknownProcedureError
    else:
        e = alloc_error(r, name, before)
        if r == _errno.EREMOTEIO:
            e.code = info.remote_error
        raise e
    e = cls(r, error(r).strerror, name)
    if cls is VersionMismatchError:
        e.low, e.high = info.vers_low, info.vers_high
    raise e


class _Closes:
    """`with` and garbage collection call close() (Client, Server)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()


class Client(_Closes):
    """A client of the RPC server registered as `name` (name@host for another
    host). Its interface comes from the server's description, or from
    `interface` (.x text) if given. Thread-safe: several threads may call at
    once (each call takes one of the session's slots). close() (or `with`)
    ends the session."""

    def __init__(self, name, interface=None, timeout=5.0):
        if _ffi.lib.ipcf_version() & 0xFFFF < MINOR_NEEDED:
            raise ImportError("ipcf.rpc needs libipcf 1.%d or later" % MINOR_NEEDED)
        self.name = name
        ret = ffi.new("ipcf_rpc_client **")
        r = _lib.ipcf_rpc_client_new(_name_arg(name), ffi.NULL, ret)
        if r < 0:
            raise error(r, name)
        self._c = ret[0]
        try:
            self.interface = Interface(interface if interface is not None else self.describe(timeout))
        except BaseException:
            self.close()
            raise
        self._codec = Codec(self.interface)
        self._served = {}  # program -> (low, high), as a server said it
        self._calls = new_call_set()  # started calls (rpc_call.py), freed before the client

    def describe(self, timeout=5.0):
        """The server's description: the .x text of what it serves."""
        self._check_open()
        text = ffi.new("char **")
        before = reason_before()
        r = _lib.ipcf_rpc_describe(self._c, to_ms(timeout), text)
        if r < 0:
            raise alloc_error(r, self.name, before)
        try:
            return ffi.string(text[0]).decode("utf-8", "replace")
        finally:
            _libc.free(text[0])

    def procedures(self):
        """Every procedure of the interface: {(program, version): [names]}."""
        return {(p["number"], v): sorted(procs) for p in self.interface.programs.values()
                for v, procs in p["versions"].items()}

    def call(self, proc, *args, version=None, timeout=_DEFAULT):
        """Call procedure `proc` (its name in the .x, any case) with args
        (Python values of its argument types) and return its result.
        version: the program version (default: the highest the server
        serves that has proc — the highest described, and if the server
        says it does not serve that one, the highest it does; a version the
        description lacks is still asked for, with proc's number in the
        highest, so the server says which it serves). timeout: seconds
        for the whole call (default: the procedure's [timeout], else 30 s;
        None: no deadline)."""
        self._check_open()
        p = self._pick(proc, version)
        if version is not None:
            return self._call(p, version, args, timeout)
        try:
            return self._call(p, p.vers, args, timeout)
        except VersionMismatchError as e:
            # nothing ran: ask again in a version it serves, if one has proc
            self._served[p.prog] = (e.low, e.high)
            q = self._in_range(p, proc, (e.low, e.high))
            if q is None:
                raise
            return self._call(q, q.vers, args, timeout)

    def _pick(self, proc, version):
        """The procedure to call: proc in version (its number in the highest
        described version if that version is not described), else in the
        highest version the server is known to serve that has it."""
        p = self.interface.procedure(proc, version)
        if p is None and version is not None:
            p = self.interface.procedure(proc)
        if p is None:
            raise UnknownProcedureError(_errno.EOPNOTSUPP, "%s serves no procedure %s" % (self.name, proc),
                                        self.name)
        served = self._served.get(p.prog)
        if version is None and served:  # the highest version it serves that has proc
            p = self._in_range(p, proc, served) or p
        return p

    def _in_range(self, p, proc, served):
        """The procedure named proc of p's program in the highest described
        version within served (low, high), or None."""
        found = [self.interface.procedure(proc, v) for v in range(served[1], served[0] - 1, -1)
                 if v in self.interface.programs_by_number.get(p.prog, {})]
        found = [q for q in found if q is not None and q.prog == p.prog]
        return found[0] if found else None

    def _encode_args(self, p, args):
        if len(args) != len(p.args):
            raise TypeError("%s takes %d argument%s, not %d" % (p.name, len(p.args),
                                                              "" if len(p.args) == 1 else "s", len(args)))
        buf = bytearray()
        depth = 1 if len(p.args) > 1 else 0  # in C, the arguments' struct (P_args) is a level
        for d, a in zip(p.args, args):
            self._codec.encode(d, a, buf, depth)
        return bytes(buf)

    @staticmethod
    def _timeout_ms(timeout):
        ms = 0 if timeout is _DEFAULT else to_ms(timeout)
        if ms == 0 and timeout is not _DEFAULT:
            raise ValueError("timeout 0: a call needs time")
        return ms

    def _call(self, p, vers, args, timeout):
        buf = self._encode_args(p, args)
        info = ffi.new("ipcf_rpc_info *")
        opts = ffi.new("ipcf_rpc_opts *")
        opts.info = info
        opts.timeout_ms = self._timeout_ms(timeout)
        res, res_len = ffi.new("void **"), ffi.new("size_t *")
        cbuf = ffi.from_buffer(buf)
        before = reason_before()
        r = _lib.ipcf_rpc_call_raw(self._c, p.prog, vers, p.number, p.flags, cbuf, len(buf), opts, res,
                                   res_len)
        if r < 0:
            _raise(r, self.name, p, info, before)
        try:
            data = ffi.buffer(res[0], res_len[0])[:] if res[0] != ffi.NULL else b""
        finally:
            _libc.free(res[0])
        return self._decode_result(p, data)

    def _decode_result(self, p, data):
        """The value of procedure p's result from its XDR (EBADMSG if it
        does not decode, or leaves bytes over)."""
        dec = _Decoder(data or b"")
        try:
            v = self._codec.decode(p.result, dec)
            if dec.pos != len(dec.buf):
                raise ValueError("bytes after the result")
        except ValueError as e:
            raise error(_errno.EBADMSG, "%s: %s" % (p.name, e)) from None
        return v

    def start(self, proc, *args, version=None, timeout=_DEFAULT):
        """Start a call of `proc` and return an ipcf.rpc_call.Call as soon as
        its arguments are sent: call.result(timeout) gives its result (or
        raises as call() does), call.cancel() asks the server to stop it,
        call.done() and call.wait(timeout) look. version and timeout (the
        whole call's deadline) as for call(); with no version, the highest
        the server is known to serve that has proc (a server that serves
        none of those fails the call: VersionMismatchError at result())."""
        self._check_open()
        p = self._pick(proc, version)
        vers = version if version is not None else p.vers
        return Call(self, p, vers, self._encode_args(p, args), self._timeout_ms(timeout), reason_before())

    def _address(self):
        return int(ffi.cast("uintptr_t", self._c))

    def _check_open(self):
        if self._c is None:
            raise ValueError("the client is closed")

    def close(self):
        """End the session (best effort) and free the client; calls started
        and not closed are freed first (cancelled if they run). Idempotent."""
        if getattr(self, "_c", None) is not None:
            for k in list(getattr(self, "_calls", ())):
                k.close()
            _lib.ipcf_rpc_client_free(self._c)
            self._c = None



def call(name, proc, *args, version=None, timeout=_DEFAULT):
    """One call through a client made for it (see Client.call)."""
    with Client(name) as c:
        return c.call(proc, *args, version=version, timeout=timeout)


from .rpc_call import Call, new_call_set  # noqa: E402,F401 (they build on the codec above)
from .rpc_server import Context, Server  # noqa: E402
