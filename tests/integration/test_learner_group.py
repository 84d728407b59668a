"""A data-parallel Learner (`ray.learner.count=2`): two gloo workers in one process group, behind one
Learner handle, train the adapter exactly as one worker does on the same global batches."""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace

import pytest

from agents import cluster
from agents import roles as factories
from agents.learner_group import LearnerGroup
from curriculum import faults
from curriculum.config import from_dict
from curriculum.faults import ACTOR_KILL_ENV
from curriculum.models import build_char_tokenizer, build_tiny_model, save_model
from curriculum.roles.api import LearnerRole
from curriculum.roles.learner import LearnerWorker, make_learner
from curriculum.testing.groups import graded_group
from curriculum.training.batch import LearnBatch

pytestmark = pytest.mark.integration

PAIRS = 8
CONFIG = from_dict(
    {
        "model": {
            "tiny": {"hidden_size": 32, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2, "intermediate_size": 64},
            "lora": {"r": 4, "alpha": 8, "dropout": 0.0},  # no dropout: both runs draw no random masks
        },
        "solver": {"attempts": 4, "max_new_tokens": 8},
        # two steps of 4 pairs (2 per worker): the second step also trains LoRA's A (B is zero before the first)
        "learner": {
            "algorithm": "dpo",
            "learning_rate": 0.05,
            "batch_size": 4,
            "steps_per_round": 2,
            "pairing": "first",
            "max_pairs_per_problem": 1,
        },
        "ray": {"num_cpus": 2, "learner": {"count": 2, "num_cpus": 1}},
    }
)


def batch(round: int = 1) -> LearnBatch:
    """PAIRS problems, each with one right and one wrong attempt: one preference pair each."""
    return LearnBatch(round=round, policy_version=round - 1, groups=tuple(graded_group(i, "RW") for i in range(PAIRS)))


def adapter_weights(folder):
    """The weights of the adapter published in `folder`, by name."""
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def grpo_batch() -> LearnBatch:
    """One problem: a group of 4 attempts, 2 right (first) and 2 wrong."""
    return LearnBatch(round=1, policy_version=0, groups=(graded_group(0, "RRWW"),))


def test_two_gloo_workers_run_grpo_as_one_worker_does_with_each_group_split_between_them(tmp_path):
    """One group of 4 attempts per generation batch, two steps on it: TRL's sampler hands each worker 2
    of its 4 repeats, and GroupServer gives worker 1 the 2 attempts worker 0 did not score (else both
    would score the right ones); the advantages are the whole group's."""
    import torch

    config = CONFIG.model_copy(
        update={
            "learner": CONFIG.learner.model_copy(
                update={
                    "algorithm": "grpo",
                    "grpo": CONFIG.learner.grpo.model_copy(
                        update={"groups_per_step": 1, "filter_low": 0.0, "filter_high": 1.0}
                    ),
                }
            )
        }
    )
    torch.manual_seed(0)
    tokenizer = build_char_tokenizer()
    save_model(build_tiny_model(config.model.tiny, tokenizer), tokenizer, tmp_path / "base")
    single = make_learner(config, tmp_path / "base", tmp_path / "single-work")
    single.publish(0).files.write(tmp_path / "start")
    expected = single.learn(grpo_batch())
    single.publish(1).files.write(tmp_path / "single")

    cluster.start_ray(config.ray)
    try:
        placement = cluster.Placement(config.ray, [("learner", config.ray.learner)])
        worker = partial(factories.make_learner_worker, config, str(tmp_path / "base"), device="cpu")
        group = LearnerGroup([placement.spawn("learner", config.ray.learner, worker) for _ in range(2)])
        outcome = group.call(LearnerRole.learn, grpo_batch()).result()
        group.call(LearnerRole.publish, 1).result().files.write(tmp_path / "group-v1")
    finally:
        cluster.stop_ray()
    assert outcome.metrics["steps"] == expected.metrics["steps"] == 2
    assert outcome.metrics["reward"] == pytest.approx(expected.metrics["reward"])  # every attempt scored once
    assert outcome.metrics["loss"] == pytest.approx(expected.metrics["loss"], rel=1e-4, abs=1e-6)
    assert_same_update(tmp_path, "group-v1")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One worker's update of a fresh adapter (in this process), and a 2-worker group on local Ray that
    has published its fresh adapter as version 0."""
    import torch

    tmp = tmp_path_factory.mktemp("group")
    torch.manual_seed(0)
    tokenizer = build_char_tokenizer()
    base = tmp / "base"
    save_model(build_tiny_model(CONFIG.model.tiny, tokenizer), tokenizer, base)

    single = make_learner(CONFIG, base, tmp / "single")  # one worker, the whole batch per step
    single.publish(0).files.write(tmp / "start")  # (the fresh adapter, for the size of the update)
    expected = single.learn(batch())
    single.publish(1).files.write(tmp / "single")
    single.learn(batch(round=2))  # (another round's trainer on the same adapter and optimizer)
    single.publish(2).files.write(tmp / "single-2")

    cluster.start_ray(CONFIG.ray)
    try:
        placement = cluster.Placement(CONFIG.ray, [("learner", CONFIG.ray.learner)])
        worker = partial(factories.make_learner_worker, CONFIG, str(base), device="cpu")
        group = LearnerGroup([placement.spawn("learner", CONFIG.ray.learner, worker) for _ in range(2)])
        start = group.call(LearnerRole.publish, 0).result()
        start.files.write(tmp / "group-v0")
        yield SimpleNamespace(tmp=tmp, group=group, expected=expected, start=start)
    finally:
        cluster.stop_ray()


def assert_same_update(tmp, got_name: str, want_name: str = "single") -> None:
    """The adapter in tmp/<got_name> is the single worker's (tmp/<want_name>), within float tolerance
    of the update."""
    start, want, got = (adapter_weights(tmp / name) for name in ("start", want_name, got_name))
    assert start.keys() == want.keys() == got.keys()
    for name in want:
        update = (want[name] - start[name]).norm()
        assert update > 0, name  # both steps trained both LoRA matrices (A once B was non-zero)
        # Within float tolerance of the update, not element by element: Adam divides each gradient by
        # its running size, so an element whose gradients nearly cancel turns last-bit differences of
        # the all-reduced sum into visible ones (measured: 1 element of 128 off by 6%).
        assert (got[name] - want[name]).norm() <= 1e-2 * update, name


def test_two_gloo_workers_train_the_adapter_as_one_worker_does_on_the_same_batches(run):
    import torch

    group, tmp = run.group, run.tmp
    assert [w.call(LearnerWorker.group).result() for w in group.workers] == [(0, 2), (1, 2)]
    outcome = group.call(LearnerRole.learn, batch()).result()
    policy = group.call(LearnerRole.publish, 1).result()
    policy.files.write(tmp / "group-v1")

    assert outcome.metrics["steps"] == run.expected.metrics["steps"] == 2
    assert len(outcome.pairs) == PAIRS  # every worker is handed the whole batch; TRL's sampler shards it
    assert outcome.metrics["loss"] == pytest.approx(run.expected.metrics["loss"], rel=1e-5)  # the global mean
    assert policy.version == 1
    assert_same_update(tmp, "group-v1")
    group.call(LearnerRole.learn, batch(round=2)).result()  # round 2: new trainers on the same processes
    group.call(LearnerRole.publish, 2).result().files.write(tmp / "group-v2")
    # rank 1's own copy, published beside it: the all-reduced steps kept the two copies equal
    group.workers[1].call(LearnerWorker.publish, 2).result().files.write(tmp / "rank1-v2")
    assert_same_update(tmp, "group-v2", "single-2")
    rank0, rank1 = adapter_weights(tmp / "group-v2"), adapter_weights(tmp / "rank1-v2")
    for name in rank0:
        torch.testing.assert_close(rank1[name], rank0[name], rtol=0, atol=0)


def test_a_worker_lost_during_learn_restarts_the_group_which_is_restored_and_learns_again(run, monkeypatch):
    group, tmp = run.group, run.tmp
    restores = []

    def restore(role):  # what the loop does (run/loop.py `restore`): the published version back
        restores.append(role.call(LearnerRole.restore, run.start).result())

    group.on_restart = restore
    faults.reset_actor_kills()  # calls counted by earlier tests in this process would shift "the first learn"
    monkeypatch.setenv(ACTOR_KILL_ENV, "learner.learn:sent")  # rank 1 is killed as learn is sent
    pids = [w.handle.pid.remote() for w in group.workers]
    before = ray_get(pids)
    group.call(LearnerRole.learn, batch()).result()
    group.call(LearnerRole.publish, 3).result().files.write(tmp / "group-again-v1")

    assert group.restarts == 1 and restores == [0]
    assert set(ray_get([w.handle.pid.remote() for w in group.workers])).isdisjoint(before)  # all new processes
    assert [w.call(LearnerWorker.group).result() for w in group.workers] == [(0, 2), (1, 2)]
    assert_same_update(tmp, "group-again-v1")  # the update made again from version 0, by the new group


def ray_get(refs):
    import ray

    return ray.get(refs)
