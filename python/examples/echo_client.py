#!/usr/bin/env python3
"""echo_client.py — allocate a flow to a name, write, read the answer.

    echo_client.py NAME [TEXT]  prints what came back; exit 1 on any error

The Python twin of examples/echo-client.c (the peer of echo_server.py, of
echo-server, or of `ipcf listen NAME --echo`).
"""
import sys

import ipcf

name = sys.argv[1] if len(sys.argv) > 1 else "greeter"
text = sys.argv[2] if len(sys.argv) > 2 else "hello"
try:
    with ipcf.alloc(name, timeout=5) as port:
        port.write(text.encode(), timeout=1)
        print(port.read(timeout=5).decode(errors="replace"))
except ipcf.IpcfError as e:
    sys.exit("echo_client: %s" % e)
