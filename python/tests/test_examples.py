"""test_examples — the examples of python/examples, run as a user runs them."""
import os
import time

import ipcf

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def wait_registered(name, timeout=10):
    """Until a process serves name (an allocation gets through), closing the probe."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            ipcf.alloc(name, timeout=5).close("probe")
            return
        except ipcf.NameNotFoundError:
            assert time.monotonic() < deadline, "%s never registered" % name
            time.sleep(0.02)


def test_echo_server_and_client(name, run_python):
    server = run_python(os.path.join(EXAMPLES, "echo_server.py"), name, "-k")
    wait_registered(name)
    for text in ("hello, python", "second flow"):
        client = run_python(os.path.join(EXAMPLES, "echo_client.py"), name, text)
        out, err = client.communicate(timeout=20)
        assert client.returncode == 0, err
        assert out == (text + "\n").encode()
    assert server.poll() is None  # -k: still serving


def test_echo_client_unknown_name_fails_clearly(name, run_python):
    client = run_python(os.path.join(EXAMPLES, "echo_client.py"), name)
    out, err = client.communicate(timeout=20)
    assert client.returncode == 1
    assert err.decode().startswith("echo_client: [Errno 2]") and name in err.decode()


def test_asyncio_echo_serves_clients_at_once(name, run_python):
    server = run_python(os.path.join(EXAMPLES, "asyncio_echo.py"), name, "4")
    wait_registered(name)  # the probe is flow 1 of 4
    ports = [ipcf.alloc(name, timeout=5) for _ in range(3)]
    for k in range(10):  # interleaved: each flow waits while the others talk
        for i, p in enumerate(ports):
            p.write(b"%d.%d" % (i, k), timeout=5)
        for i, p in enumerate(ports):
            assert p.read(timeout=5) == b"%d.%d" % (i, k)
    for p in ports:
        p.close()
    out, err = server.communicate(timeout=20)
    assert server.returncode == 0, err


def test_readme_python_block_runs(run_python):
    """The README's Python program, as printed there, against an echo of "greeter"."""
    readme = open(os.path.join(os.path.dirname(EXAMPLES), "..", "README.md")).read()
    block = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert "ipcf.alloc" in block
    with ipcf.register("greeter") as reg:
        prog = run_python("-c", block)
        with reg.accept(timeout=10) as port:
            port.write(port.read(timeout=10), timeout=5)
            out, err = prog.communicate(timeout=20)
    assert prog.returncode == 0, err
    assert out == b"hello\n"
