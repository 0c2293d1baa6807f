"""test_reach — the errors of reaching the daemon, made for real in child
processes (the library picks its runtime dir once per process): each cause
has its own exception and a text that names it (ipcf_error_cause), never a
bare "not running".

  no daemon, autostart off          NoDaemonError (EHOSTDOWN)
  the daemon program not found      DaemonNotFoundError (ENOPKG), a NoDaemonError
  runtime dir others may write to   AccessDeniedError (EACCES)
  refused by the user's quota       QuotaError (EDQUOT)
  a daemon stopped (SIGSTOP)        IpcfTimeoutError (ETIMEDOUT) within
                                    IPCF_REQUEST_TIMEOUT_MS, also for calls
                                    without a timeout
"""
import errno
import os
import signal
import subprocess
import sys

from conftest import BUILD, start_daemon, stop_daemon

CLI = os.path.join(BUILD, "bin", "ipcf")

# The child: the call, then "<class> <errno> <strerror>" of what it raised.
CHILD = """
import ipcf
try:
    ipcf.connect()
    print("connected")
except ipcf.IpcfError as e:
    print(type(e).__name__, e.errno, e.strerror)
    print("isa", " ".join(c.__name__ for c in type(e).__mro__))
"""


def run_child(python_env, rundir, **env):
    e = dict(python_env, IPCF_RUNTIME_DIR=str(rundir))
    e.pop("IPCF_NO_AUTOSTART", None)
    e.pop("IPCF_DAEMON", None)
    e.update(env)
    r = subprocess.run([sys.executable, "-c", CHILD], env=e, capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 2, r.stdout
    cls, err, text = lines[0].split(" ", 2)
    return cls, int(err), text, lines[1].split()[1:]


def test_daemon_program_not_found(tmp_path, python_env):
    rundir = tmp_path / "run"
    rundir.mkdir(mode=0o700)
    missing = str(tmp_path / "nowhere" / "ipcfd")
    cls, err, text, mro = run_child(python_env, rundir, IPCF_DAEMON=missing)
    assert (cls, err) == ("DaemonNotFoundError", errno.ENOPKG)
    assert "NoDaemonError" in mro and "IpcfError" in mro
    assert "not found" in text and missing in text, text
    assert not os.path.exists(rundir / "ipcfd.sock")


def test_no_daemon_autostart_off_says_so(tmp_path, python_env):
    rundir = tmp_path / "run"
    rundir.mkdir(mode=0o700)
    cls, err, text, _ = run_child(python_env, rundir, IPCF_NO_AUTOSTART="1")
    assert (cls, err) == ("NoDaemonError", errno.EHOSTDOWN)
    assert "autostart is off" in text and str(rundir) in text, text


def test_runtime_dir_others_may_write_to(tmp_path, python_env):
    rundir = tmp_path / "run"
    rundir.mkdir()
    os.chmod(rundir, 0o777)
    # Autostart on (the dir is checked before starting anything); were a
    # daemon started, it would be /bin/false, which leaves nothing behind.
    cls, err, text, mro = run_child(python_env, rundir, IPCF_DAEMON="/bin/false")
    assert (cls, err) == ("AccessDeniedError", errno.EACCES)
    assert "PermissionError" in mro
    assert "0777" in text and str(rundir) in text, text
    assert not os.path.exists(rundir / "ipcfd.sock")


def test_refused_by_quota(tmp_path, python_env):
    rundir = tmp_path / "run"
    rundir.mkdir(mode=0o700)
    proc = start_daemon(str(rundir), "[limits]\nclients_per_user = 1\n")
    holder = None
    try:
        # The user's one connection, not idle: it holds a registration.
        env = dict(python_env, IPCF_RUNTIME_DIR=str(rundir), IPCF_NO_AUTOSTART="1")
        holder = subprocess.Popen(
            [sys.executable, "-c", "import ipcf, sys\nr = ipcf.register('held')\n"
             "print('ready', flush=True)\nsys.stdin.read()\n"],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert holder.stdout.readline() == b"ready\n"
        cls, err, text, _ = run_child(python_env, rundir, IPCF_NO_AUTOSTART="1")
        assert (cls, err) == ("QuotaError", errno.EDQUOT)
        assert "refused by quota" in text, text
    finally:
        if holder:
            holder.stdin.close()
            holder.wait(10)
            holder.stdout.close()
        stop_daemon(proc)


# The child: stops the daemon (argv[1]), makes each call that waits for it
# without a timeout of its own (and alloc with a longer one), prints
# "<what> <class> <errno> <seconds>" (an RPC client retransmits until its
# own timeout, 2 s here), resumes it and checks that its
# registration was kept (`ipcf ls`, argv[2], shows it) and that calls work
# again.
STOPPED_CHILD = """
import os, signal, subprocess, sys, time
import ipcf, ipcf.rpc
held = ipcf.register("held")
daemon = int(sys.argv[1])
os.kill(daemon, signal.SIGSTOP)
calls = [("register", lambda: ipcf.register("x")),
         ("watch", lambda: ipcf.watch("x")),
         ("mbox_create", lambda: ipcf.mbox_create("m")),
         ("alloc_none", lambda: ipcf.alloc("x", timeout=None)),
         ("alloc_5s", lambda: ipcf.alloc("x", timeout=5)),
         ("call_none", lambda: ipcf.call("x", b"a", timeout=None)),
         ("rpc_2s", lambda: ipcf.rpc.Client("x", timeout=2))]
for what, fn in calls:
    t = time.monotonic()
    try:
        fn()
        print(what, "returned", 0, 0.0)
    except ipcf.IpcfError as e:
        print(what, type(e).__name__, e.errno, round(time.monotonic() - t, 3))
os.kill(daemon, signal.SIGCONT)
# (the daemon answers this process's late requests first: ls gets more
# than the 1 s they had; and not python's sanitizer preload, see plain_env)
ls_env = dict(os.environ, IPCF_REQUEST_TIMEOUT_MS="15000")
ls_env.pop("LD_PRELOAD", None)
ls = subprocess.run([sys.argv[2], "ls", "--json", "held"], capture_output=True, timeout=20, env=ls_env)
if b'"pid"' not in ls.stdout:
    print("ls:", ls.returncode, ls.stdout[:200], ls.stderr[:300], file=sys.stderr)
if ('"pid":%d' % os.getpid()).encode() in ls.stdout.replace(b" ", b""):
    print("kept")
ipcf.register("y").close()
print("works")
"""


def test_stopped_daemon_times_out_untimed_calls(tmp_path, python_env):
    """As ipcf.errors says: with the daemon stopped, a call without a
    timeout raises IpcfTimeoutError after IPCF_REQUEST_TIMEOUT_MS (1000
    ms here), not never; the process keeps its registration."""
    assert "IPCF_REQUEST_TIMEOUT_MS" in ipcf_errors_doc()
    rundir = tmp_path / "run"
    rundir.mkdir(mode=0o700)
    proc = start_daemon(str(rundir))
    try:
        env = dict(python_env, IPCF_RUNTIME_DIR=str(rundir), IPCF_NO_AUTOSTART="1",
                   IPCF_REQUEST_TIMEOUT_MS="1000")
        r = subprocess.run([sys.executable, "-c", STOPPED_CHILD, str(proc.pid), CLI], env=env,
                           capture_output=True, timeout=60)
    finally:
        proc.send_signal(signal.SIGCONT)
        stop_daemon(proc)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[-2:] == ["kept", "works"], (lines, r.stderr)
    for line in lines[:-2]:
        what, cls, err, secs = line.split()
        assert (cls, int(err)) == ("IpcfTimeoutError", errno.ETIMEDOUT), line
        assert 0.9 <= float(secs) <= 3.0, line
    assert len(lines) == 9, lines


def ipcf_errors_doc():
    import ipcf.errors
    return ipcf.errors.__doc__
