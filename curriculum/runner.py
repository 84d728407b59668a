"""`curriculum run`: one experiment from a recipe into its run directory.

Today a run builds (or reuses) the toy base model and records its held-out
evaluation; the co-evolution rounds plug in here.
"""

from __future__ import annotations

from pathlib import Path

from curriculum.config import Config
from curriculum.rundir import atomic_write_json, create_run_dir


def run_experiment(config: Config) -> Path:
    from curriculum.training.sft import pretrain

    run_dir = create_run_dir(config)
    print(f"run directory: {run_dir}")
    result = pretrain(config, progress=True)
    atomic_write_json(
        run_dir / "results.json",
        {"base_model": str(result.path), "base_eval": result.evaluation.to_dict()},
    )
    print(f"results: {run_dir / 'results.json'}")
    return run_dir
