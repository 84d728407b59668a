"""The round schedule of a co-evolution run (Socratic-Zero recipe).

Select -> attempt -> learn -> teach -> synthesize -> distil -> evaluate -> snapshot -> checkpoint.
Which of teach (Socratic-Zero Teacher), synthesize (SwS) and distil (Generator) do anything is
the recipe's choice (`teacher.enabled`, `synthesis.enabled`, `generator.enabled`).

Each stage is a method that reads and extends the round's `RoundState`. Its store writes
are held back while it runs (its own reads see them through `Store.read_with`, uncommitted)
and committed once, together with a record of the state, when it ends: the store holds all
of a stage or none of it, and a killed run resumes after the last completed stage (`resume`,
see `curriculum/resume.py`).

The loop talks to each role through `Role.call(method, ...)`, which returns something
with `.result()`. `LocalRole` runs the call in-process (tests, debugging); the Ray
wrapper in `agents/` sends it to an actor. So the schedule below is the same code with
or without Ray, and all of it is testable without Ray.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from curriculum.config import Config
from curriculum.curricula import admission
from curriculum.curricula.selection import (
    gaussian_usefulness,
    in_band,
    select_round_problems,
    trusted,
)
from curriculum.errors import CurriculumError
from curriculum.evaluation import EvalResult, drops_from_base
from curriculum.faults import kill_point
from curriculum.files import atomic_write_json
from curriculum.records import (
    Attempt,
    PolicyVersion,
    Problem,
    RoundStats,
    SolveRate,
    content_id,
    group_by_problem,
)
from curriculum.roles.teacher import Failure
from curriculum.roles.teacher.base import call_metrics
from curriculum.run.resume import RoundState, capture_rng, last_state, restore_rng
from curriculum.rundir import RunLayout
from curriculum.training.batch import Group, LearnBatch
from curriculum.worlds import World

log = logging.getLogger(__name__)
# A round whose grades time out more often than this says so: past it, accuracy and rewards are
# measurably understated (a timed-out grade counts as wrong).
TIMEOUT_WARNING_SHARE = 0.01

STAGES = ("select", "attempt", "learn", "teach", "synthesize", "distil", "evaluate", "snapshot", "checkpoint")


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
    """Runs calls on a plain object in this process. An argument may be the pending result of
    another role's call (`Done`): the call gets its value, as a Ray actor gets an ObjectRef's."""

    def __init__(self, target: Any):
        self.target = target

    def call(self, method: str, *args: Any, **kwargs: Any) -> Done:
        args = tuple(arg.value if isinstance(arg, Done) else arg for arg in args)
        return Done(getattr(self.target, method)(*args, **kwargs))


@dataclass
class Roles:
    store: Role
    solvers: list[Role]
    teacher: Role | None
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

    def __init__(
        self,
        config: Config,
        roles: Roles,
        world: World,
        run_dir: Path,
        prompt: Callable[[str], str],
        on_stage: Callable[[str], None] | None = None,
    ):
        self.config = config
        self.prompt = prompt  # question -> the policy's prompt (models.prompt_for with its tokenizer)
        self.roles = roles
        self.world = world
        self.run_dir = Path(run_dir)
        self.layout = RunLayout(self.run_dir)
        self.heldout = world.heldout()
        self.heldout_ids = {p.id for p in self.heldout}
        # Teacher and Generator problems that overlap an evaluation set are rejected (decontam.py).
        from curriculum.curricula.decontam import build_index

        self.contamination = build_index(config, self.heldout)
        self.policy_version = 0
        self.generator_version = 0  # the version the Generator holds (a stage that trains it moves it)
        self.learner_version = 0  # the published version the Learner holds, i.e. could restore from
        self._unpublished: LearnBatch | None = None  # an update the Learner made that is not yet published
        self.round = 0
        self.on_stage = on_stage or (lambda stage: None)
        self._pending: list[Any] | None = None  # store writes held back until the stage ends
        self._policy_sent: tuple[int, Pending] | None = None  # (version, its adapter files), see _policy_files
        self.base_evaluation: EvalResult | None = None  # set by the runner: rounds report their drop from it

    # -- helpers

    @contextmanager
    def _stage(self, name: str, state: RoundState) -> Iterator[None]:
        """Run one stage; on success commit its buffered store writes together with the stage's
        record (one transaction), so a crash leaves all of the stage in the store or none of it."""
        kill_point(f"stage:{name}", state.round)
        self.on_stage(name)
        start = time.perf_counter()
        self._pending = []
        try:
            yield
            state.seconds[name] = state.seconds.get(name, 0.0) + time.perf_counter() - start
            state.done.append(name)
            state.rng = capture_rng()
            kill_point(f"commit:{name}", state.round)
            self.roles.store.call("append", [*self._pending, state.record(name)]).result()
        finally:
            self._pending = None

    def _store(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call the store. Inside a stage, appends are held back and committed with the stage's
        record at its end; a read sees what is held without committing it (`Store.read_with`)."""
        if self._pending is not None:
            if method == "append":
                records = list(args[0])
                self._pending.extend(records)
                return len(records)
            if self._pending:
                return self.roles.store.call("read_with", self._pending, method, *args, **kwargs).result()
        return self.roles.store.call(method, *args, **kwargs).result()

    def _attempt(
        self, problems: Sequence[Problem], round: int, state: RoundState, purpose: str = "attempt"
    ) -> list[Attempt]:
        """All attempts of a round, split across the Solver actors, run in parallel; their grades
        (and those that timed out) are counted in `state`'s metrics."""
        seed = round_seed(self.config.experiment.seed, round, purpose)
        chunks = split_evenly(problems, len(self.roles.solvers))
        pending = [
            solver.call("attempt", chunk, round, seed + i)
            for i, (solver, chunk) in enumerate(zip(self.roles.solvers, chunks))
            if chunk
        ]
        results = [p.result() for p in pending]
        self._count_grades(state, sum(map(len, results)), sum(getattr(r, "timeouts", 0) for r in results))
        return [attempt for result in results for attempt in result]

    @staticmethod
    def _count_grades(s: RoundState, grades: int, timeouts: int) -> None:
        """Grades and those that ran past verifier.timeout_s (counted wrong) into the round's metrics
        (verify/grades, verify/timeouts), committed with the stage that graded them."""
        s.metrics["verify/grades"] = s.metrics.get("verify/grades", 0) + grades
        s.metrics["verify/timeouts"] = s.metrics.get("verify/timeouts", 0) + timeouts

    def _warn_on_timeouts(self, s: RoundState) -> None:
        timeouts, grades = s.metrics.get("verify/timeouts", 0), s.metrics.get("verify/grades", 0)
        if grades and timeouts > TIMEOUT_WARNING_SHARE * grades:
            log.warning(
                "round %d: %d of %d grades (%.1f%%) ran past verifier.timeout_s=%g s and count as wrong; "
                "raise verifier.timeout_s (a busy machine, long answers)",
                s.round,
                timeouts,
                grades,
                100 * timeouts / grades,
                self.config.verifier.timeout_s,
            )

    def _publish_to_solvers(self, version: int) -> None:
        policy = self._policy_files(version)
        for p in [s.call("use_policy", version, policy) for s in self.roles.solvers]:
            p.result()

    def _policy_files(self, version: int) -> Pending | None:
        """What the Solvers load as policy `version`: None (the base model), or the adapter files the
        Learner read back from its published folder, as the pending result of that call. Handed on
        as an argument it travels through Ray's object store to each Solver, which needs no shared
        filesystem with the Learner (roles/solver.py). Read once per version."""
        if not version:
            return None
        if self._policy_sent is None or self._policy_sent[0] != version:
            files = self.roles.learner.call("policy_files", self.adapter_path(version))
            files.result()  # wait here (a dead Learner is restarted and asked again), keep the pending
            self._policy_sent = (version, files)
        return self._policy_sent[1]

    def adapter_path(self, version: int) -> str | None:
        """Where policy `version` is published (None: version 0 is the base model)."""
        return str(self.layout.policy(version)) if version else None

    # -- resume

    def resume(self) -> RoundState | None:
        """Bring the roles back to the last completed stage recorded in the store and return its
        state (None for a fresh store): the Learner's adapter and optimizer and the Solvers'
        policy from the published version, the Generator from its checkpoint, the driver's RNGs."""
        state = last_state(self._store("stage_records"))
        if state is None:
            return None
        self.round, self.policy_version, self.generator_version = (
            state.round,
            state.policy_version,
            state.generator_version,
        )
        self.learner_version, self._unpublished = state.policy_version, None
        for role, calls in self.restore_calls().items():
            for method, args in calls:
                role.call(method, *args).result()
        restore_rng(state.rng)
        return state

    def restore_calls(self) -> dict[Any, list[tuple[str, tuple]]]:
        """Per role, the calls that bring a freshly built role to the loop's current state: used on
        resume, and by the Ray wrapper after it restarts a dead actor.

        A Learner that dies after an update and before that update is published gets the published
        version back and makes the update again, so the `publish` sent again publishes it: a
        policy version never advances without the update that made it."""
        policy = self._policy_files(self.policy_version)
        calls: dict[Any, list[tuple[str, tuple]]] = {
            solver: [("use_policy", (self.policy_version, policy))] for solver in self.roles.solvers
        }
        learner_adapter = self.adapter_path(self.learner_version)
        calls[self.roles.learner] = [("restore", (learner_adapter,))] if learner_adapter else []
        if self._unpublished is not None:
            calls[self.roles.learner].append(("learn", (self._unpublished,)))
        if self.roles.generator is not None:
            calls[self.roles.generator] = [("restore", (self.generator_version,))]
        return calls

    def _problems_of(self, state: RoundState) -> list[Problem]:
        if state.problems is None:  # a resumed round: read the selection back from the store
            state.problems = self._store("get_problems", state.problem_ids)
        return state.problems

    def _attempts_by_problem(self, state: RoundState) -> dict[str, list[Attempt]]:
        if state.attempts is None:  # a resumed round: read this round's attempts back from the store
            state.attempts = [
                a
                for a in self._store("round_attempts", state.round, state.problem_ids)
                if a.policy_version == state.start_version
            ]
        return group_by_problem(state.attempts)

    # -- round 0: the seed set

    def prepare_seeds(self, evaluate_base: bool = False) -> RoundState:
        """Seed problems where the base policy succeeds within the seed band (Socratic-Zero: 30-70%).

        Candidates (`world.seed_candidates`) are screened with k attempts each and chosen as a
        round's problems are (`select_round_problems` with the seed band): the in-band ones closest
        to 1/2 first; if too few are in band, failed and solved ones fill up to
        `world.seed_set_size` (reported). With `evaluate_base` the base model (policy v0) is first
        evaluated on the held-out set (a real model; the toy one was evaluated when it was built).
        Round 0 has this one stage, "seed"; its state carries the metrics and that evaluation.
        """
        sel, size = self.config.selection, self.config.world.seed_set_size
        state = RoundState(round=0, start_version=0, policy_version=0, generator_version=self.generator_version)
        with self._stage("seed", state):
            if evaluate_base:
                self._evaluate_policy(state)
            rng = random.Random(round_seed(self.config.experiment.seed, 0, "seed-candidates"))
            candidates: dict[str, Problem] = {}
            for problem in self.world.seed_candidates(sel.seed_candidates, rng):
                if problem.id not in self.heldout_ids:
                    candidates[problem.id] = problem
            attempts = self._attempt(list(candidates.values()), 0, state)
            self._warn_on_timeouts(state)
            by_problem = group_by_problem(attempts)
            rate = {pid: SolveRate.of(atts) for pid, atts in by_problem.items()}
            # The round's pools, with the seed band as the band and no fresh problems.
            chosen = [
                p.id
                for p in select_round_problems(
                    list(candidates.values()),
                    rate,
                    size,
                    sel.seed_band_low,
                    sel.seed_band_high,
                    rng,
                    fresh_fraction=0,
                    failed_fraction=sel.failed_fraction,
                    solved_fraction=sel.solved_fraction,
                    solved_by_level=sel.solved_by_level,
                )
            ]
            banded = {pid for pid, r in rate.items() if in_band(r, sel.seed_band_low, sel.seed_band_high)}
            self._store("append", [self.world.screened(candidates[pid], rate[pid]) for pid in chosen])
            self._store("append", [a for pid in chosen for a in by_problem[pid]])
            state.metrics.update(
                {
                    "seeds": len(chosen),
                    "seeds_in_band": sum(pid in banded for pid in chosen),
                    "seed_candidates": len(candidates),
                }
            )
        return state

    # -- one round

    def run_round(self, round: int, state: RoundState | None = None) -> RoundReport:
        """Run the stages of `round` that `state` (from `resume`) has not completed; all of them
        without a state."""
        if state is None or state.round != round:
            state = RoundState(
                round=round,
                start_version=self.policy_version,
                policy_version=self.policy_version,
                generator_version=self.generator_version,
            )
        self.round = round
        stages = {
            "select": self._select_stage,
            "attempt": self._attempt_stage,
            "learn": self._learn_stage,
            "teach": self._teach_stage,
            "synthesize": self._synthesize_stage,
            "distil": self._distil_stage,
            "evaluate": self._evaluate_stage,
            "snapshot": self._snapshot_stage,
            "checkpoint": self._checkpoint_stage,
        }
        assert tuple(stages) == STAGES
        for name, run_stage in stages.items():
            if name not in state.done:
                with self._stage(name, state):
                    run_stage(state)
        evaluation = state.evaluation_result or EvalResult.from_dict(state.evaluation)
        return RoundReport(
            round, state.policy_version, evaluation, dict(state.metrics), dict(state.seconds), dict(state.by_source)
        )

    def _select_stage(self, s: RoundState) -> None:
        s.problems = self._select(s.round)
        s.problem_ids = [p.id for p in s.problems]
        s.metrics["selected"] = len(s.problems)

    def _attempt_stage(self, s: RoundState) -> None:
        s.attempts = self._attempt(self._problems_of(s), s.round, s)
        self._store("append", s.attempts)
        attempts, metrics = s.attempts, s.metrics
        rates = [sum(a.correct for a in atts) / len(atts) for atts in self._attempts_by_problem(s).values()]
        metrics["attempts"] = len(attempts)
        metrics["tokens_per_attempt"] = sum(a.num_tokens for a in attempts) / max(len(attempts), 1)
        metrics["selected_solve_rate_mean"] = sum(rates) / max(len(rates), 1)
        for low in range(0, 100, 25):  # histogram of the selected problems' solve rates
            high = low + 25
            metrics[f"selected_solve_rate_hist/{low:02d}_{high:02d}"] = sum(
                low / 100 <= r < high / 100 or (high == 100 and r == 1.0) for r in rates
            )

    def _learn_stage(self, s: RoundState) -> None:
        cfg, round = self.config, s.round
        problems, by_problem = self._problems_of(s), self._attempts_by_problem(s)
        # The Learner builds its own training data (DPO pairs, GRPO groups, SFT examples) from the
        # batch: `learner.algorithm` picks it (roles/learner.py), the loop does not branch on it.
        batch = LearnBatch(
            round=round,
            policy_version=self.policy_version,
            groups=tuple(
                Group(p, self.prompt(p.question), tuple(by_problem[p.id])) for p in problems if by_problem[p.id]
            ),
        )
        outcome = self.roles.learner.call("learn", batch).result()
        pairs, learn_metrics = outcome.pairs, outcome.metrics
        self._unpublished = batch  # until published, a restarted Learner redoes it (restore_calls)
        kill_point("learn:after-update", round)
        version = self.policy_version + 1
        adapter = self.adapter_path(version)
        self.roles.learner.call("publish", version, adapter).result()
        self.learner_version, self._unpublished = version, None
        self._store("append", pairs)
        self._store(
            "append",
            [
                PolicyVersion(
                    version=version,
                    round=round,
                    parent_version=self.policy_version,
                    adapter_path=adapter,
                    algorithm=cfg.learner.algorithm,
                    metrics={k: float(v) for k, v in learn_metrics.items()},
                )
            ],
        )
        self._publish_to_solvers(version)
        self.policy_version = s.policy_version = version
        s.metrics["pairs"] = len(pairs)
        s.metrics["pairs_with_reference"] = sum(p.chosen_is_reference for p in pairs)
        s.metrics.update({f"learner/{k}": float(v) for k, v in learn_metrics.items()})

    def _failures(self, s: RoundState) -> list[Failure]:
        by_problem = self._attempts_by_problem(s)
        return [
            Failure(p, tuple(by_problem[p.id]))
            for p in self._problems_of(s)
            if by_problem[p.id] and not all(a.correct for a in by_problem[p.id])
        ]

    def _known_ids(self) -> set[str]:
        """Ids a new problem must not have: every stored problem and every held-out one."""
        return set(self._store("problem_ids")) | self.heldout_ids

    def _teach_stage(self, s: RoundState) -> None:
        if not self.config.teacher.enabled:  # recipes without the Socratic Teacher (sws, static, random)
            return
        stored = set(self._store("problem_ids"))
        taught = self.roles.teacher.call("teach", self._failures(s), stored | self.heldout_ids, s.round).result()
        self._store("append", taught.calls)  # an LLM Teacher's audited model calls
        s.metrics.update(self._admit(taught.problems, taught.rejected, "teacher", s.round, stored))
        s.metrics.update(call_metrics(taught.calls, "teacher"))

    def _admit(
        self, drafts: list[Problem], rejected: list[Any], source: str, round: int, stored: set[str]
    ) -> dict[str, float]:
        """The gate every model-written problem passes, whatever wrote it (admission.py): form,
        decontamination, duplicates and the oracle. Stores the admitted problems and every
        rejected draft with its reason; returns `<source>/...` counts."""
        drafts, malformed = admission.screen_form(drafts, source, round)
        drafts, contaminated = self._decontaminate(drafts, source, round)
        drafts, screened = admission.screen(drafts, stored, self.heldout_ids, self.world.oracle(), source, round)
        rejected = admission.sanitize([*rejected, *malformed, *contaminated, *screened])
        self._store("append", drafts)
        self._store("append", rejected)
        total = len(drafts) + len(rejected)
        return {
            f"{source}/accepted": len(drafts),
            f"{source}/rejected": len(rejected),
            f"{source}/acceptance_rate": len(drafts) / total if total else 0.0,
            f"{source}/contaminated": len(contaminated),
            **admission.rejection_metrics(rejected, source),
        }

    def _synthesize_stage(self, s: RoundState) -> None:
        """SwS: mine weaknesses from the store's accuracy history, write `synthesis.budget` variants
        aimed at their concepts (or at uniformly drawn ones), screen them with the Solver (the
        policy just published) and keep those inside the band (synthesis.py)."""
        from curriculum.curricula import synthesis, weakness

        cfg, round = self.config.synthesis, s.round
        if not cfg.enabled:
            return
        report = weakness.mine(self._store, self.config.weakness)
        rng = random.Random(round_seed(self.config.experiment.seed, round, "synthesis"))
        targets = synthesis.plan(cfg, report, rng)
        if cfg.kind == "llm":  # the Teacher's model writes and labels the drafts (roles/teacher/llm_synthesis.py)
            drafts = self.roles.teacher.call(
                "synthesize",
                targets,
                self._known_ids(),
                round,
                round_seed(self.config.experiment.seed, round, "synthesis-llm"),
            ).result()
            self._store("append", drafts.calls)
            s.metrics.update(call_metrics(drafts.calls, "synthesis"))
        else:
            mutator = self.world.mutator()
            if mutator is None:  # the config refuses this recipe first (config.py)
                raise CurriculumError(
                    f"synthesis.kind=symbolic varies problems with the world's mutation "
                    f"operators; world.name={self.config.world.name} has none"
                )
            drafts = synthesis.draft(targets, mutator, cfg.mutations, self._known_ids(), round, rng)
        clean, contaminated = self._decontaminate(drafts.problems, "synthesis", round)
        attempts = self._attempt(clean, round, s, purpose="synthesis")
        screened = synthesis.screen(clean, attempts, cfg.band_low, cfg.band_high, round)
        self._store("append", screened.kept)
        self._store("append", screened.attempts)
        self._store("append", [*drafts.rejected, *contaminated, *screened.rejected])
        s.metrics.update(report.metrics("weakness"))
        s.metrics.update(
            {
                "synthesis/drafts": len(targets),
                "synthesis/accepted": len(screened.kept),
                "synthesis/rejected": len(drafts.rejected) + len(contaminated) + len(screened.rejected),
                "synthesis/out_of_band": len(screened.rejected),
                "synthesis/attempts": len(attempts),  # screening is generation compute too
                "synthesis/tokens_per_attempt": sum(a.num_tokens for a in attempts) / max(len(attempts), 1),
            }
        )

    def _distil_stage(self, s: RoundState) -> None:
        # The store now holds the Teacher's problems of this round: known = before teach + taught.
        s.metrics.update(self._distil(s.round, self._failures(s), self._known_ids()))
        self.generator_version = s.generator_version = int(s.metrics.get("generator/version", s.generator_version))
        s.metrics.update(self._label_quality(s.round))

    def _evaluate_policy(self, s: RoundState) -> None:
        """Greedy held-out evaluation of the Solvers' current policy into the round's state."""
        cfg = self.config
        evaluation = (
            self.roles.solvers[0]
            .call("evaluate", self.heldout, cfg.evaluation.max_new_tokens, cfg.evaluation.batch_size)
            .result()
        )
        s.evaluation, s.evaluation_result = evaluation.to_dict(), evaluation
        self._count_grades(s, evaluation.n, getattr(evaluation, "timeouts", 0))
        s.metrics.update(evaluation.metrics("eval"))
        s.metrics["policy_version"] = s.policy_version

    def _evaluate_stage(self, s: RoundState) -> None:
        self._evaluate_policy(s)
        self._warn_on_timeouts(s)  # the round's last grades are in
        if self.base_evaluation is not None:
            s.metrics.update(drops_from_base(self.base_evaluation, s.evaluation_result, self.world.report_by))
        s.by_source = self._store("problem_counts_by_source", s.round)
        s.metrics.update({f"problems_added/{source}": n for source, n in s.by_source.items()})

    def _snapshot_stage(self, s: RoundState) -> None:
        stats = RoundStats(
            round=s.round,
            policy_version=s.policy_version,
            metrics={k: float(v) for k, v in s.metrics.items()},
            seconds=dict(s.seconds),
        )
        self._store("append", [stats])
        self._store("export_parquet", str(self.layout.snapshot(s.round)))

    def _checkpoint_stage(self, s: RoundState) -> None:
        """The round's checkpoint pointer. The adapter and optimizer (`policy_vNNNN`) and the
        Generator (`generator/vNNNN`) were written atomically when they were made; LATEST goes last."""
        kill_point("checkpoint:before-latest", s.round)
        atomic_write_json(
            self.layout.latest,
            {
                "round": s.round,
                "policy_version": s.policy_version,
                "adapter_path": self.adapter_path(s.policy_version),
                "generator_version": s.generator_version,
            },
        )

    def _select(self, round: int) -> list[Problem]:
        sel = self.config.selection
        candidates = trusted(self._store("problems"), sel.min_vote_share)
        rates = dict(self._store("solve_rates"))
        rates.update(self._store("solve_rates", last_n_rounds=sel.last_n_rounds))
        rng = random.Random(round_seed(self.config.experiment.seed, round, "select"))
        n = self.config.loop.selected_per_round(self.config.synthesis)  # synthesis screening shares the budget
        return select_round_problems(
            candidates,
            rates,
            n,
            sel.band_low,
            sel.band_high,
            rng,
            sel.fresh_fraction,
            sel.failed_fraction,
            sel.solved_fraction,
            solved_by_level=sel.solved_by_level,
        )

    def _distil(self, round: int, failures: Sequence[Failure], known: set[str]) -> dict[str, float]:
        """Train the Generator on (failed problem -> Teacher problem) pairs weighted by how useful
        each Teacher problem proved, then (after warm-up) let it propose problems of its own."""
        gen_cfg = self.config.generator
        if self.roles.generator is None or not gen_cfg.enabled:
            return {}
        children = [p for p in self._store("problems", source="teacher") if p.parent_id]
        rates = self._store("solve_rates", problem_ids=[p.id for p in children])
        parents = {p.id: p for p in self._store("get_problems", list({c.parent_id for c in children}))}
        examples = [
            (parents[c.parent_id], c, rates[c.id].rate) for c in children if c.id in rates and c.parent_id in parents
        ]
        out = {f"generator/{k}": float(v) for k, v in self.roles.generator.call("train", examples).result().items()}
        # The Generator now holds (and has checkpointed) this version: a restarted one proposes with it.
        self.generator_version = int(out.get("generator/version", self.generator_version))
        out["generator/mean_usefulness"] = (
            sum(gaussian_usefulness(r, gen_cfg.usefulness_center, gen_cfg.usefulness_width) for *_, r in examples)
            / len(examples)
            if examples
            else 0.0
        )
        if round > gen_cfg.warmup_rounds and failures and gen_cfg.proposals_per_round:
            proposed, rejected = self.roles.generator.call(
                "propose", [f.problem for f in failures], gen_cfg.proposals_per_round, round
            ).result()
            out.update(self._admit(proposed, rejected, "generator", round, known - self.heldout_ids))
        return out

    def _decontaminate(self, problems: list[Problem], source: str, round: int) -> tuple[list[Problem], list[Any]]:
        """(clean problems, "contaminated" rejected drafts) against the configured evaluation sets."""
        if self.contamination is None:
            return problems, []
        return self.contamination.split(problems, source, round)

    def _label_quality(self, round: int) -> dict[str, float]:
        """Agreement of this round's model-labelled answers with the world's oracle (label_quality.py)."""
        from curriculum.curricula.label_quality import label_agreement

        oracle = self.world.oracle()
        solve = oracle.solve if oracle is not None else (lambda question: None)  # no oracle: counts only
        return label_agreement(self._store("problems", round=round), solve).metrics("labels")
