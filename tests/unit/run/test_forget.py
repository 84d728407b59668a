"""What a run stops keeping once a round is complete (`CoEvolution.forget`): the token arrays no
Learner reads again (store.keep_token_arrays keeps them), policy checkpoints past
checkpoint.keep_last / keep_every, and every optimizer state but the newest's; a run resumed after
pruning continues exactly as one never interrupted."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from agents.proxy import LocalRole
from curriculum.config import from_dict
from curriculum.roles.api import Roles
from curriculum.roles.solver import GradedAttempts
from curriculum.roles.teacher import SymbolicTeacher
from curriculum.run.loop import CoEvolution
from curriculum.run.resume import compare_stores
from curriculum.store import Store
from curriculum.store.snapshots import open_snapshots
from curriculum.training.batch import ADAPTER_FILES
from curriculum.worlds.arithmetic import ArithmeticWorld
from tests.unit.run.test_resume_state import CONFIG, CountingLearner, Crash, HashSolver

ROUNDS = 5


class TokenSolver(HashSolver):
    """Its attempts carry token ids and log-probs, as a real model's do."""

    def attempt(self, problems, round, seed, progress=False):
        graded = super().attempt(problems, round, seed, progress)
        return GradedAttempts(
            [a.model_copy(update={"token_ids": [1, 2, 3], "token_logprobs": [-0.5, -0.25, -1.0]}) for a in graded]
        )


def config(**sections):
    data = CONFIG.model_dump()
    for section, values in sections.items():
        data[section] = {**data[section], **values}
    return from_dict(data)


def make_loop(run_dir: Path, store: Store, cfg, crash_learner_at: int | None = None) -> CoEvolution:
    world = ArithmeticWorld(cfg.world, seed=0)
    roles = Roles(
        store=LocalRole(store),
        solvers=[LocalRole(TokenSolver())],
        teacher=LocalRole(SymbolicTeacher(world, cfg.teacher, seed=0)),
        learner=LocalRole(CountingLearner(crash_learner_at)),
    )
    return CoEvolution(cfg, roles, world, run_dir, prompt=lambda q: q + "\n")


def run(run_dir: Path, cfg, rounds: int = ROUNDS) -> None:
    with Store(run_dir / "store.duckdb") as store:
        loop = make_loop(run_dir, store, cfg)
        loop.prepare_seeds()
        for r in range(1, rounds + 1):
            loop.run_round(r)


def arrays_by_round(store_path: Path) -> dict[int, tuple[int, int]]:
    """round -> (attempts with token arrays, attempts)."""
    with duckdb.connect(str(store_path), read_only=True) as con:
        rows = con.execute(
            "SELECT round, count_if(len(token_ids) > 0 AND len(token_logprobs) > 0), count(*) "
            "FROM attempts GROUP BY ALL"
        ).fetchall()
    return {r: (kept, n) for r, kept, n in rows}


def checkpoints(run_dir: Path) -> dict[str, list[str]]:
    return {d.name: sorted(f.name for f in d.iterdir()) for d in sorted((run_dir / "checkpoints").glob("policy_v*"))}


ADAPTER = sorted(ADAPTER_FILES)
FULL = sorted([*ADAPTER_FILES, "state.json"])  # state.json: CountingLearner's stand-in for optimizer.pt


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_token_arrays_are_kept_only_for_the_rounds_a_learner_can_still_read(tmp_path, mode):
    cfg = config(loop={"mode": mode, "max_staleness": 1})
    run(tmp_path, cfg)
    by_round = arrays_by_round(tmp_path / "store.duckdb")
    assert set(by_round) == set(range(ROUNDS + 1))
    for r, (kept, n) in by_round.items():
        # after round 5: rounds 4 and 5 (max_staleness + 1 of them) keep theirs
        assert kept == (n if r >= ROUNDS - 1 else 0), (r, kept, n)
    con, _ = open_snapshots(tmp_path / "snapshots")
    assert con.execute("SELECT count(*), count_if(len(token_ids) > 0) FROM attempts").fetchone()[1] == 0


def test_keep_token_arrays_keeps_them_all_in_the_store_and_the_snapshots(tmp_path):
    run(tmp_path, config(store={"keep_token_arrays": True}), rounds=3)
    assert all(kept == n for kept, n in arrays_by_round(tmp_path / "store.duckdb").values())
    con, _ = open_snapshots(tmp_path / "snapshots")
    row = con.execute("SELECT count(*), count_if(token_logprobs = [-0.5, -0.25, -1.0]) FROM attempts").fetchone()
    assert row[0] == row[1] > 0


def test_only_the_kept_versions_remain_and_only_the_newest_has_its_optimizer(tmp_path):
    run(tmp_path, config(checkpoint={"keep_last": 2, "keep_every": 2}))
    assert checkpoints(tmp_path) == {
        "policy_v0002": ADAPTER,  # a multiple of keep_every
        "policy_v0004": ADAPTER,  # the last two
        "policy_v0005": FULL,
    }


def test_a_run_resumed_after_pruning_continues_like_an_uninterrupted_one(tmp_path):
    cfg = config(checkpoint={"keep_last": 1, "keep_every": 0})
    run(tmp_path / "reference", cfg, rounds=4)
    run_dir = tmp_path / "crashed"
    with Store(run_dir / "store.duckdb") as store:
        loop = make_loop(run_dir, store, cfg, crash_learner_at=4)
        loop.prepare_seeds()
        for r in range(1, 4):
            loop.run_round(r)
        with pytest.raises(Crash):
            loop.run_round(4)
        assert checkpoints(run_dir) == {"policy_v0003": FULL}  # v1 and v2 pruned before the crash

        fresh = make_loop(run_dir, store, cfg)  # a new process: the Learner restores v3's state
        state = fresh.resume()
        assert (state.round, state.policy_version, fresh.roles.learner.target.updates) == (4, 3, 3)
        fresh.run_round(4, state)
    assert checkpoints(run_dir) == checkpoints(tmp_path / "reference") == {"policy_v0004": FULL}
    comparison = compare_stores(tmp_path / "reference/store.duckdb", run_dir / "store.duckdb")
    assert comparison.equal, comparison.details[:5]


def test_a_store_copied_before_pruning_compares_equal_to_the_pruned_one(tmp_path):
    import shutil

    run(tmp_path / "run", config(), rounds=2)
    early = tmp_path / "early.duckdb"
    shutil.copy(tmp_path / "run/store.duckdb", early)  # round 1's arrays still kept
    with Store(tmp_path / "run/store.duckdb") as store:
        make_loop(tmp_path / "run", store, config()).run_round(3)  # prunes round 1's
    assert arrays_by_round(early)[1][0] > 0 == arrays_by_round(tmp_path / "run/store.duckdb")[1][0]
    comparison = compare_stores(early, tmp_path / "run/store.duckdb")
    assert comparison.lost == comparison.differing == 0, comparison.details[:5]
    with duckdb.connect(str(tmp_path / "run/store.duckdb")) as con:  # a real change is still one
        con.execute("UPDATE attempts SET completion = 'changed' WHERE round = 1 AND sample_index = 0")
    assert compare_stores(early, tmp_path / "run/store.duckdb").differing > 0
