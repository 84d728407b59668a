"""The Teacher's supervised server process (agents/serve.py) with a stand-in server: health check,
restart on death up to a limit, stop with every process of its group, and no server left behind
when the process that started it is killed (PR_SET_PDEATHSIG)."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fake_server import FAKE, alive, last_pids, wait_gone

from agents.serve import ModelServer, ServerError, vllm_command
from curriculum.config import ServeConfig


def fake_server(tmp_path: Path, *extra: str, **config) -> tuple[ModelServer, Path]:
    pids = tmp_path / "pids.txt"
    settings = {"model": "fake", "startup_timeout_s": 120, "max_restarts": 1, **config}
    server = ModelServer(
        ServeConfig(**settings),
        tmp_path / "server",
        device="cpu",
        command=lambda port: [sys.executable, str(FAKE), str(port), str(pids), *extra],
    )
    return server, pids


def test_started_healthy_restarted_on_death_within_the_limit_and_stopped_with_its_group(tmp_path):
    server, pids = fake_server(tmp_path)
    try:
        served = server.ensure_running()
        assert served.base_url == f"http://127.0.0.1:{server.port}/v1" and served.model == "teacher"
        first, child = last_pids(pids)
        assert os.getpgid(first) == server.process.pid != first  # under its launcher, in a group of their own
        port = server.port
        os.kill(first, signal.SIGKILL)  # the server dies (and its launcher exits with it)
        server.process.wait(timeout=60)
        assert server.ensure_running().base_url == served.base_url and server.starts == 2 and server.port == port
        assert wait_gone(child)  # what was left of the dead server's group went with it
        second, second_child = last_pids(pids)
        os.kill(second, signal.SIGKILL)
        server.process.wait(timeout=60)
        with pytest.raises(ServerError, match="restarted 1 time.*teacher.serve.max_restarts") as caught:
            server.ensure_running()
        assert "\n" not in str(caught.value) and "server.log" in str(caught.value)
    finally:
        server.stop()
    assert wait_gone(second, second_child)


def test_stop_ends_the_server_and_its_children(tmp_path):
    server, pids = fake_server(tmp_path)
    server.ensure_running()
    pid, child = last_pids(pids)
    server.stop()
    assert wait_gone(pid, child, timeout=5)
    server.stop()  # twice is fine


def test_a_server_that_exits_while_starting_is_one_line_with_its_log(tmp_path):
    server, _ = fake_server(tmp_path, "0", "exit")
    with pytest.raises(ServerError, match="exited with 3 while starting.*cannot load the model"):
        server.ensure_running()
    server.stop()


def test_a_server_that_never_gets_healthy_is_killed_after_the_startup_timeout(tmp_path):
    server, pids = fake_server(tmp_path, "60", startup_timeout_s=1.5)
    with pytest.raises(ServerError, match="did not answer /health within 1.5 s"):
        server.ensure_running()
    assert wait_gone(*last_pids(pids), timeout=5)
    server.stop()


def test_no_server_is_left_behind_when_its_parent_is_killed(tmp_path):
    pids = tmp_path / "pids.txt"
    parent = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parents[3])!r})
        from agents.serve import ModelServer
        from curriculum.config import ServeConfig
        server = ModelServer(ServeConfig(model="fake", startup_timeout_s=120), {str(tmp_path / "server")!r},
                             command=lambda port: [sys.executable, {str(FAKE)!r}, str(port), {str(pids)!r}])
        server.ensure_running()
        print("ready", flush=True)
        time.sleep(600)
    """)
    driver = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    try:
        assert driver.stdout.readline().strip() == "ready"
        pid, child = last_pids(pids)
        assert alive(pid)
        driver.kill()  # SIGKILL: no cleanup code of the parent runs
        driver.wait()
        assert wait_gone(pid, child)  # the kernel sent the server SIGTERM when its parent died
    finally:
        driver.kill()


def test_a_sigkilled_launcher_still_takes_the_server_and_its_children_down(tmp_path):
    """Ray SIGKILLs an exiting actor's direct children: the server never is one."""
    server, pids = fake_server(tmp_path)
    try:
        server.ensure_running()
        pid, child = last_pids(pids)
        os.kill(server.process.pid, signal.SIGKILL)
        assert wait_gone(pid, child)  # SIGTERM to the server (its parent died), which ended its child
    finally:
        server.stop()


def test_the_vllm_command_line_binds_loopback_and_holds_no_key():
    config = ServeConfig(model="/models/qwen", served_name="teacher", extra_args=["--seed", "3"])
    command = vllm_command(config, 8123, "cpu")
    assert command[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert command[command.index("--host") + 1] == "127.0.0.1" and command[command.index("--port") + 1] == "8123"
    assert command[command.index("--dtype") + 1] == "float32"  # auto picks bf16 on a CPU
    assert '"disable_any_whitespace": true' in command[command.index("--structured-outputs-config") + 1]
    assert command[-2:] == ["--seed", "3"] and not any("key" in part.lower() for part in command)
    assert vllm_command(config, 8123, "cuda")[command.index("--dtype") + 1] == "auto"


def test_teacher_serve_num_gpus_reaches_the_server_command_line_as_its_tensor_parallel_size():
    from curriculum.config import from_dict

    serve = {"model": "/models/qwen", "num_gpus": 2}
    config = from_dict({"teacher": {"kind": "llm", "serve": serve}}).llm_teacher.serve
    command = vllm_command(config, 8123, "cuda")
    assert command[command.index("--tensor-parallel-size") + 1] == "2"
    assert "--tensor-parallel-size" not in vllm_command(config, 8123, "cpu")  # no GPU here: the model runs whole
    one = ServeConfig(model="/models/qwen", num_gpus=1)
    assert "--tensor-parallel-size" not in vllm_command(one, 8123, "cuda")
    # the same value in extra_args is not repeated
    same = ServeConfig(model="/models/qwen", num_gpus=2, extra_args=["-tp", "2"])
    assert (
        vllm_command(same, 8123, "cuda").count("-tp") + vllm_command(same, 8123, "cuda").count("--tensor-parallel-size")
        == 1
    )


@pytest.mark.parametrize(
    "serve, expected",
    [
        ({"num_gpus": 2, "extra_args": ["--tensor-parallel-size", "4"]}, r"extra_args sets --tensor-parallel-size 4"),
        ({"num_gpus": 2, "extra_args": ["--tensor-parallel-size=1"]}, r"num_gpus=2 sets it to 2"),
        ({"extra_args": ["-tp", "2"]}, r"teacher.serve.num_gpus=0 sets it to 1"),
        ({"num_gpus": 1.5}, r"teacher.serve.num_gpus=1.5: above 1 .* a whole number"),
    ],
)
def test_a_tensor_parallel_size_that_disagrees_with_teacher_serve_num_gpus_is_refused_in_one_line(serve, expected):
    from curriculum.config import ConfigError, from_dict

    with pytest.raises(ConfigError, match=expected) as caught:
        from_dict({"teacher": {"kind": "llm", "serve": {"model": "/models/qwen", **serve}}})
    assert "\n" not in str(caught.value)
