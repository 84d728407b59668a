"""The distributed set-up of one data-parallel Learner worker (training/distributed.py) and the
per-device share of a step."""

import os

import pytest

from curriculum.errors import CurriculumError
from curriculum.training.distributed import WorkerSpec, backend_for, free_port, join, leave, worker_environment
from curriculum.training.trl_args import batch_args


def test_a_worker_gets_torchruns_variables_with_its_one_visible_gpu_as_local_rank_0():
    env = worker_environment(WorkerSpec(rank=1, world_size=2, master_addr="10.0.0.5", master_port=29511))
    assert env == {
        "RANK": "1",
        "WORLD_SIZE": "2",
        "LOCAL_RANK": "0",  # Ray shows the actor only its own GPU: always cuda:0
        "LOCAL_WORLD_SIZE": "1",
        "MASTER_ADDR": "10.0.0.5",
        "MASTER_PORT": "29511",
    }
    assert backend_for("cuda") == "nccl" and backend_for("cpu") == "gloo"
    with pytest.raises(ValueError, match="rank 2 is outside a group of 2"):
        WorkerSpec(rank=2, world_size=2, master_addr="x", master_port=1)


def test_a_worker_joins_a_gloo_group_and_accelerate_sees_it(monkeypatch):
    """A group of one (the two-worker group is tests/integration/test_learner_group.py's)."""
    import torch.distributed as dist

    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)  # join sets them; monkeypatch puts them back
    join(WorkerSpec(0, 1, "127.0.0.1", free_port()), "cpu", timeout_s=30)
    try:
        assert dist.is_initialized() and dist.get_backend() == "gloo" and dist.get_world_size() == 1
        assert os.environ["MASTER_ADDR"] == "127.0.0.1"
        with pytest.raises(RuntimeError, match="joined a process group already"):
            join(WorkerSpec(0, 1, "127.0.0.1", free_port()), "cpu", timeout_s=30)
    finally:
        leave()
    assert not dist.is_initialized()


def test_each_worker_takes_its_share_of_a_step_and_an_uneven_split_names_the_key():
    assert batch_args(16, world_size=1)["per_device_train_batch_size"] == 16
    assert batch_args(16, world_size=4) == {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 1}
    assert batch_args(16, 2, world_size=4) == {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 2}
    with pytest.raises(CurriculumError, match=r"learner.batch_size\) does not split over ray.learner.count=4"):
        batch_args(6, world_size=4)
