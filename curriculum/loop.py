"""The round schedule of a co-evolution run (Socratic-Zero recipe).

Select -> attempt -> learn -> teach -> distil -> evaluate -> snapshot -> checkpoint.

The loop talks to each role through `Role.call(method, ...)`, which returns something
with `.result()`. `LocalRole` runs the call in-process (tests, debugging); the Ray
wrapper in `agents/` sends it to an actor. So the schedule below is the same code with
or without Ray, and all of it is testable without Ray.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from curriculum.config import Config
from curriculum.records import Attempt, PolicyVersion, Problem, RoundStats, content_id
from curriculum.rundir import atomic_write_json
from curriculum.roles.teacher import Failure
from curriculum.selection import gaussian_usefulness, select_round_problems
from curriculum.training.pairs import build_preference_pairs

STAGES = ("select", "attempt", "learn", "teach", "distil", "evaluate", "snapshot", "checkpoint")


class Pending(Protocol):
    def result(self) -> Any: ...


class Role(Protocol):
    def call(self, method: str, *args: Any, **kwargs: Any) -> Pending: ...


@dataclass
class Done:
    value: Any

    def result(self) -> Any:
        return self.value


class LocalRole:
    """Runs calls on a plain object in this process."""

    def __init__(self, target: Any):
        self.target = target

    def call(self, method: str, *args: Any, **kwargs: Any) -> Done:
        return Done(getattr(self.target, method)(*args, **kwargs))


@dataclass
class Roles:
    store: Role
    solvers: list[Role]
    teacher: Role
    learner: Role
    generator: Role | None = None


@dataclass
class RoundReport:
    round: int
    policy_version: int
    evaluation: Any  # EvalResult
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    problems_by_source: dict[str, int] = field(default_factory=dict)


def round_seed(seed: int, round: int, purpose: str) -> int:
    """A per-round, per-purpose seed: a re-run of the same round samples the same things."""
    return int(content_id(seed, round, purpose), 16) % (2**31)


def split_evenly(items: Sequence[Any], parts: int) -> list[list[Any]]:
    """Contiguous, near-equal chunks (the order of the concatenation is the input order)."""
    size, extra = divmod(len(items), parts)
    chunks, start = [], 0
    for i in range(parts):
        end = start + size + (i < extra)
        chunks.append(list(items[start:end]))
        start = end
    return chunks


class CoEvolution:
    """Runs rounds of the co-evolution recipe against a set of roles."""

    def __init__(self, config: Config, roles: Roles, world: Any, run_dir: Path,
                 prompt: Callable[[str], str], on_stage: Callable[[str], None] | None = None):
        self.config = config
        self.prompt = prompt  # question -> the policy's prompt (models.prompt_for with its tokenizer)
        self.roles = roles
        self.world = world
        self.run_dir = Path(run_dir)
        self.heldout = world.heldout()
        self.heldout_ids = {p.id for p in self.heldout}
        self.policy_version = 0
        self.round = 0
        self.on_stage = on_stage or (lambda stage: None)
        self._seconds: dict[str, float] = {}

    # -- helpers

    @contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        self.on_stage(name)
        start = time.perf_counter()
        yield
        self._seconds[name] = self._seconds.get(name, 0.0) + time.perf_counter() - start

    def _store(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.roles.store.call(method, *args, **kwargs).result()

    def _attempt(self, problems: Sequence[Problem], round: int) -> list[Attempt]:
        """All attempts of a round, split across the Solver actors, run in parallel."""
        seed = round_seed(self.config.experiment.seed, round, "attempt")
        chunks = split_evenly(problems, len(self.roles.solvers))
        pending = [solver.call("attempt", chunk, round, seed + i)
                   for i, (solver, chunk) in enumerate(zip(self.roles.solvers, chunks)) if chunk]
        return [attempt for p in pending for attempt in p.result()]

    def _publish_to_solvers(self, version: int, adapter_path: str | None) -> None:
        for p in [s.call("use_policy", version, adapter_path) for s in self.roles.solvers]:
            p.result()

    # -- round 0: the seed set

    def prepare_seeds(self) -> dict[str, float]:
        """Seed problems where the base policy succeeds within the seed band (Socratic-Zero: 30-70%).

        Candidates are screened with k attempts each; the in-band ones closest to 1/2 become seeds.
        If too few are in band, the nearest outside it fill up to `world.seed_set_size` (reported).
        """
        sel, size = self.config.selection, self.config.world.seed_set_size
        rng = random.Random(round_seed(self.config.experiment.seed, 0, "seed-candidates"))
        cells = [(f, level) for f in self.world.families for level in self.world.levels]
        candidates: dict[str, Problem] = {}
        for i in range(sel.seed_candidates):
            family, level = cells[i % len(cells)]
            problem = self.world.sample(family, level, rng, source="seed")
            if problem.id not in self.heldout_ids:
                candidates[problem.id] = problem
        attempts = self._attempt(list(candidates.values()), round=0)
        by_problem: dict[str, list[Attempt]] = defaultdict(list)
        for attempt in attempts:
            by_problem[attempt.problem_id].append(attempt)
        rate = {pid: sum(a.correct for a in atts) / len(atts) for pid, atts in by_problem.items()}
        in_band = [pid for pid, r in rate.items() if sel.seed_band_low - 1e-9 <= r <= sel.seed_band_high + 1e-9]
        ranked = sorted(rate, key=lambda pid: (pid not in in_band, abs(rate[pid] - 0.5), pid))
        chosen = ranked[:size]
        self._store("append", [candidates[pid] for pid in chosen])
        self._store("append", [a for pid in chosen for a in by_problem[pid]])
        return {"seeds": len(chosen), "seeds_in_band": sum(pid in in_band for pid in chosen),
                "seed_candidates": len(candidates)}

    # -- one round

    def run_round(self, round: int) -> RoundReport:
        self._seconds = {}
        self.round = round
        cfg = self.config
        metrics: dict[str, float] = {}

        with self._stage("select"):
            problems = self._select(round)
        metrics["selected"] = len(problems)

        with self._stage("attempt"):
            attempts = self._attempt(problems, round)
            self._store("append", attempts)
        by_problem: dict[str, list[Attempt]] = defaultdict(list)
        for attempt in attempts:
            by_problem[attempt.problem_id].append(attempt)
        rates = [sum(a.correct for a in atts) / len(atts) for atts in by_problem.values()]
        metrics["attempts"] = len(attempts)
        metrics["tokens_per_attempt"] = sum(a.num_tokens for a in attempts) / max(len(attempts), 1)
        metrics["selected_solve_rate_mean"] = sum(rates) / max(len(rates), 1)
        for low in range(0, 100, 25):  # histogram of the selected problems' solve rates
            high = low + 25
            metrics[f"selected_solve_rate_hist/{low:02d}_{high:02d}"] = sum(
                low / 100 <= r < high / 100 or (high == 100 and r == 1.0) for r in rates)

        with self._stage("learn"):
            pairs = [pair for problem in problems for pair in build_preference_pairs(
                problem, by_problem[problem.id], self.prompt(problem.question), self.policy_version, round,
                cfg.learner.pairing, cfg.learner.max_pairs_per_problem)]
            learn_metrics = self.roles.learner.call("update", pairs, round).result()
            version = self.policy_version + 1
            adapter = str(self.run_dir / "checkpoints" / f"policy_v{version:04d}")
            self.roles.learner.call("publish", version, adapter).result()
            self._store("append", pairs)
            self._store("append", [PolicyVersion(
                version=version, round=round, parent_version=self.policy_version, adapter_path=adapter,
                algorithm=cfg.learner.algorithm, metrics={k: float(v) for k, v in learn_metrics.items()})])
            self._publish_to_solvers(version, adapter)
            self.policy_version = version
        metrics["pairs"] = len(pairs)
        metrics["pairs_with_reference"] = sum(p.chosen_is_reference for p in pairs)
        metrics.update({f"learner/{k}": float(v) for k, v in learn_metrics.items()})

        with self._stage("teach"):
            failures = [Failure(p, tuple(by_problem[p.id])) for p in problems
                        if by_problem[p.id] and not all(a.correct for a in by_problem[p.id])]
            known = set(self._store("problem_ids")) | self.heldout_ids
            taught = self.roles.teacher.call("teach", failures, known, round).result()
            self._store("append", taught.problems)
            self._store("append", taught.rejected)
        drafts = len(taught.problems) + len(taught.rejected)
        metrics["teacher/accepted"] = len(taught.problems)
        metrics["teacher/rejected"] = len(taught.rejected)
        metrics["teacher/acceptance_rate"] = len(taught.problems) / drafts if drafts else 0.0

        with self._stage("distil"):
            metrics.update(self._distil(round, failures, known | {p.id for p in taught.problems}))

        with self._stage("evaluate"):
            evaluation = self.roles.solvers[0].call(
                "evaluate", self.heldout, cfg.evaluation.max_new_tokens, cfg.evaluation.batch_size).result()
        metrics.update(evaluation.metrics("eval"))
        metrics["policy_version"] = self.policy_version

        by_source = self._store("problem_counts_by_source", round)
        metrics.update({f"problems_added/{source}": n for source, n in by_source.items()})
        with self._stage("snapshot"):
            stats = RoundStats(round=round, policy_version=self.policy_version,
                               metrics={k: float(v) for k, v in metrics.items()}, seconds=dict(self._seconds))
            self._store("append", [stats])
            self._store("export_parquet", str(self.run_dir / "snapshots" / f"round_{round:04d}"))
        with self._stage("checkpoint"):
            atomic_write_json(self.run_dir / "checkpoints" / "LATEST.json",
                              {"round": round, "policy_version": self.policy_version,
                               "adapter_path": adapter})
        return RoundReport(round, self.policy_version, evaluation, metrics, dict(self._seconds), by_source)

    def _select(self, round: int) -> list[Problem]:
        sel = self.config.selection
        candidates = self._store("problems")
        rates = dict(self._store("solve_rates"))
        rates.update(self._store("solve_rates", last_n_rounds=sel.last_n_rounds))
        rng = random.Random(round_seed(self.config.experiment.seed, round, "select"))
        return select_round_problems(candidates, rates, self.config.loop.problems_per_round, sel.band_low,
                                     sel.band_high, sel.fresh_fraction, rng)

    def _distil(self, round: int, failures: Sequence[Failure], known: set[str]) -> dict[str, float]:
        """Train the Generator on (failed problem -> Teacher problem) pairs weighted by how useful
        each Teacher problem proved, then (after warm-up) let it propose problems of its own."""
        gen_cfg = self.config.generator
        if self.roles.generator is None or not gen_cfg.enabled:
            return {}
        children = [p for p in self._store("problems", source="teacher") if p.parent_id]
        rates = self._store("solve_rates", problem_ids=[p.id for p in children])
        parents = {p.id: p for p in self._store("get_problems", list({c.parent_id for c in children}))}
        examples = [(parents[c.parent_id], c, rates[c.id].rate) for c in children
                    if c.id in rates and c.parent_id in parents]
        out = {f"generator/{k}": float(v) for k, v in
               self.roles.generator.call("train", examples).result().items()}
        out["generator/mean_usefulness"] = (
            sum(gaussian_usefulness(r, gen_cfg.usefulness_center, gen_cfg.usefulness_width)
                for *_, r in examples) / len(examples) if examples else 0.0)
        if round > gen_cfg.warmup_rounds and failures and gen_cfg.proposals_per_round:
            proposed, rejected = self.roles.generator.call(
                "propose", [f.problem for f in failures], gen_cfg.proposals_per_round, round).result()
            fresh = []
            for problem in proposed:
                if problem.id in known:
                    rejected.append(_rejected_duplicate(problem, round))
                else:
                    known.add(problem.id)
                    fresh.append(problem)
            self._store("append", fresh)
            self._store("append", rejected)
            total = len(fresh) + len(rejected)
            out.update({"generator/accepted": len(fresh), "generator/rejected": len(rejected),
                        "generator/acceptance_rate": len(fresh) / total if total else 0.0})
        return out


def _rejected_duplicate(problem: Problem, round: int):
    from curriculum.records import RejectedDraft

    return RejectedDraft(source="generator", parent_id=problem.parent_id, text=problem.question,
                         reason="duplicate", detail="already in the store or the held-out set", round=round,
                         created_by=problem.created_by)
