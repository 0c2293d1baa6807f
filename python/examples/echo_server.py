#!/usr/bin/env python3
"""echo_server.py — a server reachable by name that echoes every message.

    echo_server.py NAME [-k]    register NAME, accept a flow, echo until it
                                ends; -k: keep accepting, one flow after another

The Python twin of examples/echo-server.c: register, accept (with who
asked), read/write, and the end of the flow.
"""
import sys

import ipcf


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: echo_server.py NAME [-k]")
    name, keep = sys.argv[1], sys.argv[2:] == ["-k"]
    try:
        with ipcf.register(name) as reg:
            while True:
                with reg.accept() as port:
                    print("flow from %s (pid %d)" % (port.request.sender.name,
                                                     port.request.sender.pid), file=sys.stderr)
                    try:
                        for msg in port:  # until the client ends the flow
                            port.write(msg)
                    except ipcf.PeerDiedError:
                        pass
                if not keep:
                    break
    except ipcf.IpcfError as e:
        sys.exit("echo_server: %s" % e)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
