"""Runs the Teacher's server as its child and ties both lives to the process that started it.

    python serve_launcher.py PARENT_PID COMMAND...

Started by agents/serve.py (`ModelServer`) in a process group of its own. The kernel sends this
launcher SIGTERM when the thread that started it dies (PR_SET_PDEATHSIG), and sends the server
SIGTERM when this launcher dies, however it dies: Ray SIGKILLs the direct children of an actor
that exits, and a SIGKILLed vLLM server would leave its engine processes running, so the server
is never a direct child of the actor. A SIGTERM here is passed on to the server, which ends its
own processes (vLLM does on SIGTERM); the launcher exits with the server's exit code.

Linux only (prctl); plain standard library, so it starts fast and imports nothing of the project.
"""

import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def main() -> int:
    parent, command = int(sys.argv[1]), sys.argv[2:]
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the signal was armed
        return 1
    server = subprocess.Popen(command, preexec_fn=_die_with_parent)  # this process has one thread: safe
    signal.signal(signal.SIGTERM, lambda signum, frame: server.send_signal(signal.SIGTERM))
    return server.wait()


if __name__ == "__main__":
    sys.exit(main())
