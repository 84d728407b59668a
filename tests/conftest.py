import os

# Toy-sized models run faster on one thread than on two competing ones, and tests must
# not depend on what else the machine is doing.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# No trace-export thread left to flush at exit: a fresh-clone `make test` segfaulted there after passing.
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")

from curriculum.environment import pin_cpu_numerics  # noqa: E402

pin_cpu_numerics()  # as the `curriculum` command does, before anything loads torch

# A run small enough for the test suite: tiny model, two families, three levels.
TINY_RUN_OVERRIDES = [
    "model.tiny.hidden_size=32",
    "model.tiny.num_layers=2",
    "model.tiny.num_heads=2",
    "model.tiny.num_kv_heads=1",
    "model.tiny.intermediate_size=64",
    "pretrain.examples=128",
    "pretrain.batch_size=32",
    "world.families=[add,sub]",
    "world.max_level=3",
    "world.heldout_per_level=3",
    "world.seed_set_size=12",
    "selection.seed_candidates=24",
    "solver.attempts=4",
    "solver.max_new_tokens=48",
    "evaluation.max_new_tokens=48",
    "loop.rounds=2",
    "loop.problems_per_round=8",
    "generator.warmup_rounds=0",
    "generator.proposals_per_round=4",
    "teacher.max_failures=4",
    "ray.num_cpus=2",
    "model.lora.r=8",
    "model.lora.alpha=16",
    "learner.steps_per_round=4",
    # the share these sizes were set with (tiny.yaml's own is tuned for rounds of 640 problems)
    "selection.failed_fraction=0.25",
]


# --------------------------------------------------------------------------- a shared tiny run
# Built once per session and shared by the tests that read a finished run (coevolution, eval,
# the notebook); the base model is a fixture of its own so that tests needing only a model
# do not start Ray.

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory):
    from curriculum.config import load_config

    tmp = tmp_path_factory.mktemp("tiny")
    return load_config(
        ROOT / "configs/tiny.yaml",
        TINY_RUN_OVERRIDES
        + [f"experiment.runs_dir={tmp / 'runs'}", f"model.cache_dir={tmp / 'cache'}", "experiment.run_name=it"],
    )


@pytest.fixture(scope="session")
def tiny_base_model(tiny_config) -> Path:
    """The pretrained tiny base model of `tiny_config` (seconds at these sizes)."""
    from curriculum.training.pretrain import pretrain

    return Path(pretrain(tiny_config, progress=False).path)


@pytest.fixture(scope="session")
def tiny_run_dir(tiny_config, tiny_base_model) -> Path:
    """Two rounds of the Socratic-Zero recipe on a local Ray cluster, at minimal sizes."""
    from curriculum.run.runner import run_experiment

    return run_experiment(tiny_config)


# --------------------------------------------------------------------------- a synthetic run
# A run directory written directly through the store (no model): for the readers of runs.


def _graded(problem, round: int, version: int, correct: int, k: int = 4) -> list:
    from curriculum.records import Attempt

    return [
        Attempt(
            problem_id=problem.id,
            policy_version=version,
            sample_index=i,
            round=round,
            completion="answer: 1",
            extracted_answer="1",
            correct=i < correct,
            reward=float(i < correct),
            num_tokens=10,
        )
        for i in range(k)
    ]


@pytest.fixture
def synthetic_run(tmp_path):
    """Two rounds: seed -> teacher child (r1) -> teacher grandchild (r2), and a generator sibling (r2).

    Solve rates (4 attempts each): seed 2/4 in r0, 4/4 in r1; child 1/4 in r2; other seed 0/4 in r1
    and r2; grandchild and sibling never attempted.
    """
    import random

    from curriculum.config import from_dict, to_yaml
    from curriculum.records import RejectedDraft, RoundStats
    from curriculum.store import Store
    from curriculum.worlds.arithmetic import ArithmeticWorld

    config = from_dict(
        {"solver": {"attempts": 4}, "selection": {"last_n_rounds": 1}, "world": {"families": ["add"], "max_level": 3}}
    )
    world = ArithmeticWorld(config.world, seed=0)
    rng = random.Random(0)
    seed = world.sample("add", 1, rng, source="seed")
    other = world.sample("add", 3, rng, source="seed")
    child = world.mutate(seed, "harder", rng, round=1, source="teacher").model_copy(update={"created_by": "teacher"})
    grandchild = world.mutate(child, "harder", rng, round=2, source="teacher")
    sibling = world.mutate(seed, "sibling", rng, round=2, source="generator")
    run_dir = tmp_path / "runs" / "tiny" / "synthetic"
    (run_dir / "snapshots").mkdir(parents=True)
    (run_dir / "config.yaml").write_text(to_yaml(config))
    with Store(run_dir / "store.duckdb") as store:
        store.append([seed, other, child])  # round 1
        store.append(_graded(seed, 0, 0, 2) + _graded(seed, 1, 0, 4) + _graded(other, 1, 0, 0))
        store.append(
            [
                RejectedDraft(source="teacher", parent_id=seed.id, text="x", reason="duplicate", round=1),
                RoundStats(
                    round=1,
                    policy_version=1,
                    seconds={"select": 0.1},
                    metrics={"eval/accuracy": 0.5, "eval/level_1/accuracy": 1.0, "eval/level_2/accuracy": 0.0},
                ),
            ]
        )
        store.export_snapshot(run_dir / "snapshots", 1, compact_every=50)
        store.append([grandchild, sibling])  # round 2
        store.append(_graded(other, 2, 1, 0) + _graded(child, 2, 1, 1))
        store.append(
            [
                RejectedDraft(source="teacher", parent_id=child.id, text="y", reason="contaminated", round=2),
                RejectedDraft(source="generator", parent_id=seed.id, text="z", reason="unparseable", round=2),
                RejectedDraft(source="generator", parent_id=seed.id, text="w", reason="unparseable", round=2),
                RoundStats(
                    round=2,
                    policy_version=2,
                    seconds={"select": 0.2},
                    metrics={
                        "eval/accuracy": 0.75,
                        "eval/level_1/accuracy": 1.0,
                        "eval/level_2/accuracy": 0.5,
                        # a validation set (world.validation_per_level), from round 2 on
                        "validation/accuracy": 0.6,
                        "validation/level_2/accuracy": 0.4,
                        "validation/level_1/accuracy": 0.8,
                        "validation/worst_drop": 20.0,
                    },
                ),
            ]
        )
        store.export_snapshot(run_dir / "snapshots", 2, compact_every=50)
    problems = {"seed": seed, "other": other, "child": child, "grandchild": grandchild, "sibling": sibling}
    return run_dir, problems


# --------------------------------------------------------------------------- a real-model fixture


@pytest.fixture(scope="session")
def random_qwen(tmp_path_factory) -> Path:
    """A small random-weight Qwen2 with a byte-level BPE tokenizer trained on GSM8K train and a
    ChatML template (curriculum/testing/random_qwen.py): an ordinary HF folder, built in seconds."""
    from curriculum.testing.random_qwen import build

    return build(tmp_path_factory.mktemp("models") / "random-qwen")
