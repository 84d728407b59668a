"""Several nodes without a shared filesystem (the rule in curriculum/rundir.py): a head node, where
the driver and the store run, and a second node holding every CPU, so the placement group puts the
Solver, Learner, Teacher and Generator there. That node's processes cannot see the driver's disk:
an audit hook (hidden_disk/sitecustomize.py, on that node's PYTHONPATH only) refuses, and records,
any file access under the folder holding the run directory and the driver's model cache.

The run (configs/tiny.yaml at test sizes, through the real CLI) is killed in round 2 and resumed;
it completes, nothing on the second node touched the driver's disk, and every checkpoint is in the
run directory the driver wrote.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from conftest import TINY_RUN_OVERRIDES  # noqa: E402

pytestmark = pytest.mark.integration

HOOK = Path(__file__).parent / "hidden_disk"
# Round 2 has run up to its checkpoint pointer: the resumed run sends the Learner policy v2's checkpoint
# and the Generator its v1 (trained in round 2; round 1 has no examples for it) from the run directory.
KILL_AT = "checkpoint:before-latest@2"
# Before that, the Learner's actor (on the second node) dies once it has published v2: Ray rebuilds it
# there, it fetches the base model from the driver again, is sent v1's checkpoint and learns again.
KILL_ACTOR = "learner.publish#2:done"


def curriculum(args: list[str], **kills: str) -> subprocess.CompletedProcess:
    """The CLI; `kills`: fault injection (curriculum/faults.py), e.g. CURRICULUM_KILL_AT="..."."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CURRICULUM_")}
    env.update(kills)
    return subprocess.run(
        [sys.executable, "-m", "curriculum.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    from ray.cluster_utils import Cluster

    tmp = tmp_path_factory.mktemp("nodes")
    disk = tmp / "driver-disk"  # what only the driver's node sees
    disk.mkdir()
    log = tmp / "hidden.log"
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        cluster.add_node(
            num_cpus=2,
            env_vars={
                "PYTHONPATH": os.pathsep.join([str(HOOK), os.environ.get("PYTHONPATH", "")]),
                "CURRICULUM_TEST_HIDDEN": str(disk),
                "CURRICULUM_TEST_HIDDEN_LOG": str(log),
            },
        )
        overrides = TINY_RUN_OVERRIDES + [
            f"ray.address={cluster.address}",
            f"experiment.runs_dir={disk / 'runs'}",
            f"model.cache_dir={disk / 'cache'}",
        ]
        run_dir = disk / "run"
        killed = curriculum(
            ["run", "configs/tiny.yaml", *overrides, "--run-dir", str(run_dir)],
            CURRICULUM_KILL_AT=KILL_AT,
            CURRICULUM_KILL_ACTOR=KILL_ACTOR,
        )
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
        assert "learner actor died before answering publish" in killed.stderr, killed.stderr[-3000:]
        resumed = curriculum(["resume", str(run_dir)])
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        yield cluster, disk, run_dir, log, resumed
    finally:
        cluster.shutdown()


def test_the_second_node_never_touched_the_driver_disk(two_nodes):
    _, _, _, log, resumed = two_nodes
    assert "resuming after round 2: snapshot (policy v2)" in resumed.stdout
    processes = Path(f"{log}.processes").read_text().splitlines()
    assert any("default_worker" in line for line in processes)  # the hook ran in that node's workers
    assert not log.exists(), log.read_text()[:2000]


def test_every_checkpoint_is_in_the_run_directory_the_driver_wrote(two_nodes):
    _, disk, run_dir, _, _ = two_nodes
    assert sorted(p.name for p in disk.iterdir()) == ["cache", "run", "runs"]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["rounds"] == 2 and results["policy_version"] == 2
    assert json.loads((run_dir / "checkpoints/LATEST.json").read_text())["policy_version"] == 2
    for version in (1, 2):  # the Learner's checkpoints, written by the driver from the bytes it was sent
        policy = {p.name for p in (run_dir / "checkpoints" / f"policy_v{version:04d}").iterdir()}
        assert {"adapter_config.json", "adapter_model.safetensors"} <= policy
        assert ("optimizer.pt" in policy) == (version == 2)  # only the newest keeps its optimizer state
    assert (run_dir / "checkpoints" / "generator" / "v0001" / "generator.json").is_file()
    assert [p.name for p in (run_dir / "snapshots").iterdir()] and (run_dir / "store.duckdb").is_file()


def test_a_node_without_the_model_is_refused_in_one_line_naming_it(two_nodes):
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from agents.cluster import _spawn
    from agents.roles import make_learner
    from curriculum.config import RoleResources, from_dict
    from curriculum.models import ModelError

    cluster, disk, _, log, _ = two_nodes
    (second,) = cluster.worker_nodes
    ray.init(address=cluster.address)
    try:
        there = NodeAffinitySchedulingStrategy(second.node_id, soft=False)
        config = from_dict({"model": {"kind": "hf", "path": "/nowhere/model"}})
        role = _spawn("learner", 1, RoleResources(), partial(make_learner, config, "/nowhere/model"), there, 0)
        with pytest.raises(ModelError, match=rf"'/nowhere/model' does not exist .* on node .*{second.node_id[:12]}"):
            role.ready()

        @ray.remote(num_cpus=0, scheduling_strategy=there)
        def read(path: str) -> str:
            return Path(path).read_text()

        with pytest.raises(PermissionError):  # the hook works: the driver's disk is not there
            ray.get(read.remote(str(disk / "run" / "config.yaml")))
        assert "config.yaml" in log.read_text()
    finally:
        ray.shutdown()
