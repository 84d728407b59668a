"""`curriculum ablate`: recipes side by side at equal compute, over several seeds.

Each recipe (a YAML config) runs once per seed, one run after another, into
OUT/runs/<experiment>/seed<N>. Before anything runs, the recipes must agree on a round's compute:
the same rounds, the same attempts generated per round (loop.problems_per_round x
solver.attempts, synthesized drafts' screening included), the same learner steps per round
(learner.steps_per_round, which must be set) and the same sequences with a gradient per step (a
DPO pair is two sequences, a GRPO group solver.attempts, an SFT example one). The measured counts
are reported beside the results, so the claim is checked. Wall seconds are not part of the budget:
they are measured per stage and reported, so a reader sees what each role costs.

Writes, updated after every run:
- OUT/results.json: per run, the held-out accuracy per round and level and the compute used;
- OUT/results.md: final held-out accuracy per level and overall, mean ± std over seeds (sample
  std), with tokens per attempt, attempts and learner steps per round, and wall time; the wall
  seconds per stage group (generation, training, Teacher + Generator, ...); and whether the
  recipes of each seed started from the same base model;
- OUT/accuracy.png: held-out accuracy per round, one line per recipe, shaded ± std.

A finished run (results.json in its folder) is reused and an interrupted one resumed, so an
interrupted ablation continues where it stopped when run again with the same arguments.
"""

from __future__ import annotations

import json
import math
import shlex
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curriculum.config import Config, load_config
from curriculum.errors import CurriculumError
from curriculum.files import atomic_write_json
from curriculum.report.ablation import RunResult, collect, write_outputs
from curriculum.rundir import RunLayout, is_run_dir, run_dir_for
from curriculum.training.pretrain import pretrain


class AblationError(CurriculumError):
    """Recipes that cannot be compared as asked; the message says which setting differs."""


@dataclass(frozen=True)
class Recipe:
    name: str  # the config file's stem
    path: str
    config: Config  # with the shared overrides, before the per-seed ones


def sequences_per_step(config: Config) -> int:
    """Sequences that get a gradient in one learner step: `learner.batch_size` counts DPO pairs
    (a chosen and a rejected sequence each) but SFT examples (one each), and GRPO steps take
    `groups_per_step` groups of solver.attempts. (DPO also scores its pairs under the frozen
    reference, without a gradient; the measured training seconds show that cost.)"""
    learner = config.learner
    per_algorithm = {
        "dpo": lambda: 2 * learner.batch_size,
        "sft": lambda: learner.batch_size,
        "grpo": lambda: learner.grpo.groups_per_step * config.solver.attempts,
    }
    if learner.algorithm not in per_algorithm:
        raise AblationError(f"learner.algorithm={learner.algorithm}: ablate does not know its sequences per step")
    return per_algorithm[learner.algorithm]()


def compute_budget(config: Config) -> dict[str, int | None]:
    """What one run spends: rounds, attempts generated per round, learner steps per round and
    sequences per learner step."""
    return {
        "rounds": config.loop.rounds,  # synthesis screening is part of problems_per_round
        "attempts_per_round": config.loop.problems_per_round * config.solver.attempts,
        "learner_steps_per_round": config.learner.steps_per_round,
        "sequences_per_learner_step": sequences_per_step(config),
    }


def check_equal_compute(recipes: Sequence[Recipe]) -> dict[str, int | None]:
    """The common budget of the recipes, or an AblationError naming the first difference."""
    budgets = {r.name: compute_budget(r.config) for r in recipes}
    for recipe in recipes:
        if recipe.config.learner.steps_per_round is None:
            raise AblationError(
                f"{recipe.path}: learner.steps_per_round is not set, so the learner's updates per "
                "round depend on the data; set it (configs/ablation_base.yaml does)"
            )
    first = recipes[0].name
    for name, budget in budgets.items():
        for key, value in budget.items():
            if value != budgets[first][key]:
                raise AblationError(
                    f"unequal compute: {key} is {budgets[first][key]} for {first} but {value} "
                    f"for {name}; make the recipes agree ({_BUDGET_HINTS[key]})"
                )
    return budgets[first]


_BUDGET_HINTS = {
    "rounds": "loop.rounds",
    "attempts_per_round": "loop.problems_per_round x solver.attempts; see configs/ablation_base.yaml",
    "learner_steps_per_round": "learner.steps_per_round",
    "sequences_per_learner_step": "learner.batch_size counts DPO pairs of 2 sequences but single SFT examples; "
    "GRPO: learner.grpo.groups_per_step x solver.attempts",
}


def load_recipes(paths: Sequence[str], overrides: Sequence[str]) -> list[Recipe]:
    recipes = [Recipe(Path(p).stem, str(p), load_config(p, list(overrides))) for p in paths]
    names = [r.name for r in recipes]
    if len(set(names)) < len(names):
        raise AblationError(f"two recipes share a file name ({', '.join(names)}); the name labels the results")
    experiments = [r.config.experiment.name for r in recipes]
    if len(set(experiments)) < len(experiments):
        raise AblationError(
            f"two recipes share experiment.name ({', '.join(experiments)}); their runs would "
            "collide: give each recipe its own"
        )
    return recipes


def seed_config(recipe: Recipe, seed: int, out: Path) -> Config:
    data = recipe.config.model_dump(mode="json")
    data["experiment"].update(seed=seed, runs_dir=str(out / "runs"), run_name=f"seed{seed}")
    return Config.model_validate(data)


# ----------------------------------------------------------------------------- driver


def run_ablation(
    paths: Sequence[str],
    overrides: Sequence[str],
    seeds: int,
    out: str | Path,
    command: str | None = None,
    console: Any = None,
) -> Path:
    """Run every recipe for `seeds` seeds (experiment.seed, +1, ...) one after another; see the module doc."""
    from rich.console import Console

    from curriculum.run.runner import resume_experiment, run_experiment

    console = console or Console()
    if seeds < 1:
        raise AblationError(f"--seeds must be at least 1, got {seeds}")
    recipes = load_recipes(paths, overrides)
    budget = check_equal_compute(recipes)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    command = command or "curriculum ablate " + " ".join(shlex.quote(a) for a in [*paths, *overrides])
    first_seed = recipes[0].config.experiment.seed
    seed_list = [first_seed + i for i in range(seeds)]
    plan = [(seed, recipe) for seed in seed_list for recipe in recipes]  # seed-major: one base model at a time
    names = [r.name for r in recipes]
    results: list[RunResult] = []
    start = time.perf_counter()
    timed: list[float] = []
    for index, (seed, recipe) in enumerate(plan, 1):
        config = seed_config(recipe, seed, out)
        run_dir = run_dir_for(config)
        elapsed = time.perf_counter() - start
        eta = f", about {(len(plan) - index + 1) * statistics.fmean(timed) / 60:.0f} min left" if timed else ""
        console.rule(
            f"[bold]ablation run {index}/{len(plan)}: {recipe.name}, seed {seed}[/bold] "
            f"({elapsed / 60:.1f} min so far{eta})"
        )
        if RunLayout(run_dir).results.is_file():
            console.print(f"finished before: reusing {run_dir}")
            timing = run_dir / "ablation.json"
            wall = json.loads(timing.read_text())["wall_seconds"] if timing.is_file() else math.nan
        else:
            pretrain(config, progress=True)  # outside the timed run: the base model is shared by the recipes
            began = time.perf_counter()
            if is_run_dir(run_dir):
                console.print(f"interrupted before: resuming {run_dir}")
                resume_experiment(run_dir, console=console, expected=config)
            else:
                run_experiment(config, console=console)
            wall = time.perf_counter() - began
            atomic_write_json(run_dir / "ablation.json", {"wall_seconds": wall, "recipe": recipe.name, "seed": seed})
            timed.append(wall)
        results.append(collect(run_dir, recipe.name, seed, wall))
        write_outputs(out, results, names, command, budget, seed_list)
    console.rule(f"ablation done in {(time.perf_counter() - start) / 60:.1f} min")
    console.print(f"results: {out / 'results.md'}, {out / 'accuracy.png'}")
    return out
