"""Is `make run` the same computation whatever the thread count? Builds the toy base model twice,
in fresh cache folders, once on 1 and once on 2 intra-op threads, and runs 2 rounds from each
(every role in the process, so the same thread count everywhere), then compares bit for bit.

    python bench/repro.py                  # configs/tiny.yaml, about 10 minutes on 2 cores
    python bench/repro.py --rounds 1 configs/tiny.yaml loop.problems_per_round=64

Last line: RESULT base_models_identical=<bool> rounds_identical=<bool> max_abs_weight_diff=<float>
max_abs_adapter_diff=<float> fingerprint=<1-thread base> fingerprint_2=<2-thread base>
where max_abs_weight_diff is the largest difference of any base-model weight between the two
builds and rounds_identical compares every round's held-out results and the last adapter.
The CPU numerics are pinned first (curriculum/environment.py), as the `curriculum` command does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_once(threads: int, config: str, overrides: list[str], rounds: int, folder: Path) -> Path:
    """One run in a child process on `threads` threads; returns its run directory."""
    run_dir = folder / "run"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    command = [
        sys.executable,
        "-m",
        "curriculum.cli",
        "run",
        config,
        "--run-dir",
        str(run_dir),
        f"model.cache_dir={folder / 'cache'}",
        f"loop.rounds={rounds}",
        "ray.in_process=true",
        f"experiment.runs_dir={folder}",
        *overrides,
    ]
    print(f"[{threads} thread(s)] {' '.join(command[3:])}", flush=True)
    with open(folder / "log.txt", "w") as log:
        done = subprocess.run(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode:
        sys.exit(f"the {threads}-thread run failed; see {folder / 'log.txt'}")
    return run_dir


def tensors(folder: Path) -> dict[str, object]:
    from safetensors.torch import load_file

    out: dict[str, object] = {}
    for file in sorted(folder.glob("*.safetensors")):
        out.update(load_file(str(file)))
    return out


def max_abs_diff(a: dict[str, object], b: dict[str, object]) -> float:
    if a.keys() != b.keys():
        return float("inf")
    return max((float((a[k].double() - b[k].double()).abs().max()) for k in a), default=0.0)  # type: ignore[attr-defined]


def round_results(run_dir: Path) -> list[dict]:
    """Each round's held-out counts, read from the run's stage records (the store file)."""
    from curriculum.store import Store

    with Store(run_dir / "store.duckdb", read_only=True) as store:
        return [
            json.loads(r.state).get("evaluation")
            for r in store.stage_records()
            if json.loads(r.state).get("done", [""])[-1] == "checkpoint"
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", nargs="?", default="configs/tiny.yaml")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from curriculum.environment import pin_cpu_numerics, weights_fingerprint

    pin_cpu_numerics()
    with tempfile.TemporaryDirectory(prefix="curriculum-repro-") as scratch:
        runs = {}
        for threads in (1, 2):
            folder = Path(scratch) / f"threads-{threads}"
            folder.mkdir()
            runs[threads] = run_once(threads, args.config, args.overrides, args.rounds, folder)
        results = {t: json.loads((r / "results.json").read_text()) for t, r in runs.items()}
        bases = {t: Path(results[t]["base_model"]) for t in runs}
        fingerprints = {t: weights_fingerprint(bases[t]) for t in runs}
        weight_diff = max_abs_diff(tensors(bases[1]), tensors(bases[2]))
        version = results[1]["policy_version"]
        adapters = {t: runs[t] / "checkpoints" / f"policy_v{version:04d}" for t in runs}
        adapter_diff = max_abs_diff(tensors(adapters[1]), tensors(adapters[2]))
        per_round = {t: round_results(runs[t]) for t in runs}
        for t in runs:
            print(
                f"{t} thread(s): base {fingerprints[t]}, base accuracy {_accuracy(results[t]['base_eval']):.4f}, "
                f"final accuracy {_accuracy(results[t]['final_eval']):.4f}"
            )
        rounds_identical = per_round[1] == per_round[2] and adapter_diff == 0.0
        print(
            f"RESULT base_models_identical={fingerprints[1] == fingerprints[2]} rounds_identical={rounds_identical} "
            f"max_abs_weight_diff={weight_diff:.3g} max_abs_adapter_diff={adapter_diff:.3g} "
            f"fingerprint={fingerprints[1]} fingerprint_2={fingerprints[2]}"
        )


def _accuracy(evaluation: dict) -> float:
    cells = evaluation["cells"]
    return sum(c["correct"] for c in cells) / max(1, sum(c["n"] for c in cells))


if __name__ == "__main__":
    main()
