"""test_abi — the package's declarations (ipcf/_ffi.py) against the real
header: every struct's size and every field's offset and size, and the
constants, as a C compiler sees include/ipcf.h."""
import os
import shutil
import subprocess

import pytest

from conftest import plain_env
from ipcf import _ffi

TREE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STRUCTS = ("ipcf_qos", "ipcf_peer_info", "ipcf_reason", "ipcf_reg_opts", "ipcf_request",
           "ipcf_port_stats", "ipcf_call_req", "ipcf_dgram_src", "ipcf_mbox_opts", "ipcf_receipt",
           "ipcf_mcast_opts", "ipcf_event", "ipcf_set_opts", "ipcf_set_event")
CONSTANTS = {"IPCF_NAME_MAX": _ffi.NAME_MAX, "IPCF_REASON_MAX": _ffi.REASON_MAX,
             "IPCF_CALL_MAX": _ffi.CALL_MAX, "IPCF_REG_EXCLUSIVE": _ffi.REG_EXCLUSIVE,
             "IPCF_MBOX_EXCLUSIVE": _ffi.MBOX_EXCLUSIVE, "IPCF_MBOX_STREAM": _ffi.MBOX_STREAM,
             "IPCF_MBOX_SEND": _ffi.MBOX_SEND, "IPCF_MBOX_RECV": _ffi.MBOX_RECV,
             "IPCF_SET_IN": _ffi.SET_IN,
             "IPCF_VERSION_MAJOR": _ffi.MAJOR}


def expected():
    """(C expression, the value the package assumes) pairs."""
    out = []
    for s in STRUCTS:
        t = _ffi.ffi.typeof(s)
        out.append(("sizeof(%s)" % s, _ffi.ffi.sizeof(t)))
        for fname, f in t.fields:
            out.append(("offsetof(%s, %s)" % (s, fname), f.offset))
            out.append(("sizeof(((%s *)0)->%s)" % (s, fname), _ffi.ffi.sizeof(f.type)))
    out += sorted(CONSTANTS.items())
    return out


def test_declarations_match_the_header(tmp_path):
    cc = os.environ.get("CC") or "cc"
    if not shutil.which(cc):
        pytest.fail("no C compiler (%s) to check the declarations with" % cc)
    pairs = expected()
    src = tmp_path / "abi.c"
    src.write_text("#include <stddef.h>\n#include <stdio.h>\n#include \"ipcf.h\"\nint main(void) {\n" +
                   "".join('printf("%%llu\\n", (unsigned long long)(%s));\n' % e for e, _ in pairs) +
                   "return 0;\n}\n")
    exe = tmp_path / "abi"
    subprocess.run([cc, "-I", os.path.join(TREE, "include"), "-o", str(exe), str(src)], check=True,
                   timeout=60, env=plain_env())
    got = subprocess.run([str(exe)], check=True, capture_output=True, timeout=10,
                         env=plain_env()).stdout.split()
    wrong = ["%s: C says %s, the package %d" % (e, g.decode(), v)
             for (e, v), g in zip(pairs, got) if int(g) != v]
    assert len(got) == len(pairs) and not wrong, "\n".join(wrong)


def test_every_declared_function_is_in_the_library():
    import re
    names = sorted(set(re.findall(r"\b(ipcf_\w+)\(", _ffi.CDEF)))
    missing = []
    for n in names:
        try:
            getattr(_ffi.lib, n)
        except AttributeError:
            missing.append(n)
    assert len(names) > 40 and not missing, missing
