"""A stand-in for the vLLM server in the ModelServer tests: answers GET /health with 200 on
127.0.0.1:PORT (after DELAY seconds), writes its pid and its child's pid to PIDS_FILE, and keeps a
child process (as vLLM keeps its engine); on SIGTERM it ends the child and exits, as vLLM does.

    python fake_server.py PORT PIDS_FILE [DELAY] [exit]

Also the tests' helpers for watching processes (importable: tests/ is on sys.path via conftest.py).
"""

import os
import signal
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

FAKE = Path(__file__).resolve()


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, exited but not yet reaped by its parent, counts as gone)."""
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


def wait_gone(*pids: int, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(pid) for pid in pids):
            return True
        time.sleep(0.1)
    return False


def last_pids(pids_file: Path) -> tuple[int, int]:
    """(server pid, its child's pid) of the server started last."""
    server, child = pids_file.read_text().split("\n")[-2].split()
    return int(server), int(child)


class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port, pids_file = int(sys.argv[1]), sys.argv[2]
    delay = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    if len(sys.argv) > 4 and sys.argv[4] == "exit":
        print("fake server: cannot load the model", flush=True)
        sys.exit(3)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])

    def shutdown(signum, frame):
        child.kill()
        child.wait()
        os._exit(0)

    signal.signal(signal.SIGTERM, shutdown)
    with open(pids_file, "a") as out:
        out.write(f"{os.getpid()} {child.pid}\n")
    time.sleep(delay)
    HTTPServer(("127.0.0.1", port), Health).serve_forever()
