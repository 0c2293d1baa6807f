"""conftest — every test runs against a real ipcfd on a private runtime dir.

One daemon per pytest session (the C library picks its runtime dir once per
process, at its first call): started here before any test imports ipcf,
stopped at the end. Tests use names of their own (the `name` fixture), so
they do not see each other's registrations.

Where things come from:
  IPCF_BUILD    the build folder of the tree (default: <tree>/build): its
                bin/ipcfd and lib/libipcf.so.1
  IPCF_DAEMON   the ipcfd to run instead (an installed one)
  IPCF_LIBRARY  the libipcf.so.1 to load instead (see ipcf/_ffi.py)
"""
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

PYDIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TREE = os.path.dirname(PYDIR)
BUILD = os.path.join(TREE, os.environ.get("IPCF_BUILD", "build"))
DAEMON = os.environ.get("IPCF_DAEMON") or os.path.join(BUILD, "bin", "ipcfd")
LIBRARY = os.environ.get("IPCF_LIBRARY") or os.path.join(BUILD, "lib", "libipcf.so.1")

# The package of this tree, whatever is installed.
sys.path.insert(0, PYDIR)

_daemon = {}


def _socket_ready(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def plain_env():
    """This environment without a sanitizer's preload (test-python.c puts
    one in for python under a sanitizer build; programs built with the
    sanitizer, or not at all, must not get it)."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    return env


def start_daemon(rundir, config=None):
    """Start ipcfd on rundir and wait (5 s at most) until it accepts."""
    args = [DAEMON, "--runtime-dir", rundir]
    if config is not None:
        conf = os.path.join(rundir, "ipcfd.conf")
        with open(conf, "w") as f:
            f.write(config)
        args += ["--config", conf]
    env = plain_env()
    env.setdefault("IPCF_STATE_DIR", rundir)  # its host key there, not in /var/lib/ipcf
    with open(os.path.join(rundir, "ipcfd.log"), "wb") as log:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
    sock = os.path.join(rundir, "ipcfd.sock")
    deadline = time.monotonic() + 5
    while not _socket_ready(sock):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("ipcfd did not start (%s): see %s/ipcfd.log" % (DAEMON, rundir))
        time.sleep(0.01)
    return proc


def stop_daemon(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def pytest_configure(config):
    if not os.access(DAEMON, os.X_OK):
        raise pytest.UsageError("no ipcfd at %s: build the tree (make) or set IPCF_DAEMON" % DAEMON)
    os.environ.setdefault("IPCF_LIBRARY", LIBRARY)
    rundir = tempfile.mkdtemp(prefix="ipcf-pytest.")
    os.environ["IPCF_RUNTIME_DIR"] = rundir
    os.environ["IPCF_NO_AUTOSTART"] = "1"
    _daemon["dir"] = rundir
    _daemon["proc"] = start_daemon(rundir)


def pytest_unconfigure(config):
    if "proc" in _daemon:
        stop_daemon(_daemon.pop("proc"))
        shutil.rmtree(_daemon.pop("dir"), ignore_errors=True)


_serial = itertools.count()


@pytest.fixture
def name(request):
    """A name no other test uses."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "-", request.node.name)[:80]
    return "py.%s.%d.%d" % (base, os.getpid(), next(_serial))


@pytest.fixture
def python_env():
    """The environment a Python child needs to reach this session's daemon
    with this tree's package."""
    env = dict(os.environ)
    env["PYTHONPATH"] = PYDIR + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def run_python(python_env):
    """Start `python3 ARGS...` with python_env; returns the Popen."""
    procs = []

    def run(*args, **kw):
        env = dict(python_env)
        env.update(kw.pop("env", {}))
        p = subprocess.Popen([sys.executable] + list(args), env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, **kw)
        procs.append(p)
        return p
    yield run
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(5)
        for f in (p.stdout, p.stderr):
            if f:
                f.close()
