"""The Teacher's server (agents/serve.py) hosted by a Ray actor is never left behind: when the driver
is killed (SIGKILL, no cleanup), Ray ends the actor and the kernel ends the server with it. A
stand-in server keeps the test at Ray's start-up cost (the vLLM round is test_llm_teacher_vllm.py)."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("ray")

from fake_server import FAKE, alive, last_pids, wait_gone  # noqa: E402  (tests/, on sys.path via conftest.py)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_no_server_is_left_behind_when_the_driver_is_killed(tmp_path):
    pids = tmp_path / "pids.txt"
    driver_code = textwrap.dedent(f"""
        import sys, time
        from functools import partial
        sys.path.insert(0, {str(ROOT)!r})
        import ray
        from agents.proxy import RayRole, role_actor
        from agents.serve import ModelServer
        from curriculum.config import ServeConfig

        def server():
            return ModelServer(ServeConfig(model="fake", startup_timeout_s=300), {str(tmp_path / "server")!r},
                               command=lambda port: [sys.executable, {str(FAKE)!r}, str(port), {str(pids)!r}])

        # address="local": a cluster of its own, never the latest one started on this machine (a
        # cluster another test or run left alive; CI once joined one and failed on num_cpus).
        ray.init(address="local", num_cpus=1, include_dashboard=False, _node_ip_address="127.0.0.1",
                 configure_logging=False,
                 runtime_env={{"env_vars": {{"PYTHONPATH": {str(ROOT)!r}}}}})  # the workers import this checkout
        role = RayRole(role_actor().options(num_cpus=0).remote(server, 1), "teacher")
        print("served", role.call(ModelServer.ensure_running).result().base_url, flush=True)
        time.sleep(600)
    """)
    driver = subprocess.Popen([sys.executable, "-c", driver_code], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        line = driver.stdout.readline()
        assert line.startswith("served http://127.0.0.1:"), line
        server, child = last_pids(pids)
        assert alive(server) and alive(child)
        driver.kill()
        driver.wait()
        assert wait_gone(server, child, timeout=120), "the Teacher's server outlived the killed driver"
    finally:
        driver.kill()


class DeadEndpointTeacher:
    def teach(self, failures, known_ids, round):
        from curriculum.roles.teacher.endpoint import EndpointError

        raise EndpointError("the Teacher's endpoint teacher @ http://127.0.0.1:9/v1 is not reachable")


def test_a_user_error_raised_in_an_actor_reaches_the_driver_as_its_one_line():
    import ray
    from ray import cloudpickle

    from agents import cluster
    from agents.proxy import RayRole, role_actor
    from curriculum.config import RayConfig
    from curriculum.roles.teacher.endpoint import EndpointError

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the actor cannot import this test module
    cluster.start_ray(RayConfig(num_cpus=1))
    try:
        role = RayRole(role_actor().options(num_cpus=0).remote(DeadEndpointTeacher, 1), "teacher")
        with pytest.raises(EndpointError) as caught:
            role.call(DeadEndpointTeacher.teach, [], [], 1).result()
        assert str(caught.value) == "the Teacher's endpoint teacher @ http://127.0.0.1:9/v1 is not reachable"
    finally:
        ray.shutdown()
