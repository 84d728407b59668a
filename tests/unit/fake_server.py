"""A stand-in for the vLLM server in the ModelServer tests: answers GET /health with 200 on
127.0.0.1:PORT (after DELAY seconds), writes its pid and its child's pid to PIDS_FILE, and keeps a
child process (as vLLM keeps its engine); on SIGTERM it ends the child and exits, as vLLM does.

    python fake_server.py PORT PIDS_FILE [DELAY] [exit]
"""

import os
import signal
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


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
