"""The loop's rounds carry the health of their new problems (curricula/health.py) into the round
metrics (the `rounds` table, MLflow), and warn in one log line once diversity has stayed low for
health.warn_after_rounds rounds."""

from __future__ import annotations

import logging
from pathlib import Path

from agents.proxy import LocalRole
from curriculum.config import from_dict
from curriculum.roles.api import Roles
from curriculum.roles.teacher import SymbolicTeacher
from curriculum.run.loop import CoEvolution
from curriculum.store import Store
from curriculum.worlds.arithmetic import ArithmeticWorld
from tests.unit.run.test_resume_state import CountingLearner, HashSolver


def run_rounds(run_dir: Path, rounds: int, **health) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """(each round's metrics, each round's metrics as the store's rounds table holds them)."""
    config = from_dict(
        {
            "world": {"families": ["add"], "max_level": 2, "heldout_per_level": 2, "seed_set_size": 4},
            "selection": {"seed_candidates": 8},
            "solver": {"attempts": 4},
            "loop": {"problems_per_round": 4},
            "generator": {"enabled": False},
            "health": health,
        }
    )
    world = ArithmeticWorld(config.world, seed=0)
    with Store(run_dir / "store.duckdb") as store:
        roles = Roles(
            store=LocalRole(store),
            solvers=[LocalRole(HashSolver())],
            teacher=LocalRole(SymbolicTeacher(world, config.teacher, seed=0)),
            learner=LocalRole(CountingLearner()),
        )
        loop = CoEvolution(config, roles, world, run_dir, prompt=lambda q: q + "\n")
        loop.prepare_seeds()
        reports = [loop.run_round(r).metrics for r in range(1, rounds + 1)]
        stored = [dict(m) for (m,) in store.con.execute("SELECT metrics FROM rounds ORDER BY round").fetchall()]
    return reports, stored


def test_each_round_records_the_health_of_the_problems_it_added(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        reports, stored = run_rounds(tmp_path, 2)
    for metrics, kept in zip(reports, stored):
        added = sum(v for k, v in metrics.items() if k.startswith("problems_added/"))
        assert added > 0 and metrics["health/new_problems"] == added
        assert 0 < metrics["health/distinct_2"] <= 1 and metrics["health/concepts"] >= 1
        assert metrics["health/low_diversity"] == 0
        assert {k: v for k, v in kept.items() if k.startswith("health/")} == {
            k: v for k, v in metrics.items() if k.startswith("health/")
        }
    assert "diversity has been low" not in caplog.text


def test_the_loop_warns_once_diversity_stays_below_the_floor(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):  # a floor no round reaches: every round with new problems is low
        reports, _ = run_rounds(tmp_path, 3, min_distinct_2=1.0, warn_after_rounds=2)
    assert [m["health/low_diversity_rounds"] for m in reports] == [1, 2, 2]
    assert [m["health/low_diversity"] for m in reports] == [0, 1, 1]
    warned = [r.getMessage() for r in caplog.records if "diversity has been low" in r.getMessage()]
    assert [line.split(":")[0] for line in warned] == ["round 2", "round 3"]
    assert "health.min_distinct_2=1" in warned[0]
