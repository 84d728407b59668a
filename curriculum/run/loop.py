"""The round schedule of a co-evolution run (Socratic-Zero recipe).

Select -> attempt -> learn -> teach -> synthesize -> distil -> evaluate -> snapshot -> checkpoint,
one object each (run/stages.py). Which of teach (Socratic-Zero Teacher), synthesize (SwS) and
distil (Generator) do anything is the recipe's choice (`teacher.enabled`, `synthesis.enabled`,
`generator.enabled`).

Each stage reads and extends the round's `RoundState`. Its store writes are held back while it
runs (a `StageTransaction`; its own reads see them uncommitted) and committed once, together with
a record of the state, when it ends: the store holds all of a stage or none of it, and a killed
run resumes after the last completed stage (`resume`, see run/resume.py).

`loop.mode=async` overlaps sampling with training (one-step-off, as verl's and AReaL's pipelines):
while the Learner trains on round r (the learn stage), round r+1's problems are selected and the
Solvers sample them with the policy round r started with (`sample_ahead`); round r+1's select and
attempt stages take them instead of selecting and sampling. So a round trains on attempts one
version old: each attempt records its version, the Learner drops groups older than
`loop.max_staleness` and GRPO corrects with the recorded sampling log-probs. Round r+1 is selected
before round r's Teacher adds problems (they are selectable from round r+2). Resume in async mode
loses and duplicates no record and reads completed stages back, but is not exact: attempts sampled
ahead are kept only in memory until round r+1's attempt stage commits them, so a run killed before
that samples them again on resume, with the policy then current (sync mode resumes exactly).

The loop talks to each role through a typed handle (`roles.api.Role`): `LocalRole` runs the call
in-process (tests, `ray.in_process`), `RayRole` sends it to an actor (agents/proxy.py). So the
schedule below is the same code with or without Ray, and all of it is testable without Ray.
"""

from __future__ import annotations

import logging
import random
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curriculum.config import Config
from curriculum.curricula import admission
from curriculum.curricula.decontam import build_index
from curriculum.curricula.health import NearDuplicates
from curriculum.curricula.selection import in_band, select_round_problems
from curriculum.errors import CurriculumError
from curriculum.evaluation import EvalResult
from curriculum.faults import kill_point
from curriculum.files import FolderFiles
from curriculum.records import Attempt, DraftSource, Problem, RejectedDraft, SolveRate, group_by_problem
from curriculum.roles.api import GeneratorRole, LearnerRole, Pending, Role, Roles, SolverRole
from curriculum.roles.solver import GradedAttempts
from curriculum.roles.teacher import Failure
from curriculum.run.resume import RoundState, capture_rng, last_state, restore_rng, round_seed
from curriculum.run.stages import STAGES, Stage, select_problems, stages
from curriculum.run.transaction import StageTransaction
from curriculum.rundir import RunLayout
from curriculum.store import Store
from curriculum.store.queries import StoreQueries
from curriculum.training.batch import ADAPTER_FILES, LearnBatch, PolicyRef
from curriculum.worlds import World

__all__ = ["STAGES", "CoEvolution", "RoundReport", "round_seed", "split_evenly"]

log = logging.getLogger(__name__)
# A round whose grades time out more often than this says so: past it, accuracy and rewards are
# measurably understated (a timed-out grade counts as wrong).
TIMEOUT_WARNING_SHARE = 0.01
# The Generator's checkpoints kept in the run directory: the newest and the one before.
GENERATOR_CHECKPOINTS_KEPT = 2


@dataclass
class RoundReport:
    round: int
    policy_version: int
    evaluation: EvalResult
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    problems_by_source: dict[str, int] = field(default_factory=dict)


@dataclass
class SampledAhead:
    """Async mode: a round's problems, selected while the round before it trained, and the Solvers'
    attempts at them, sampled with policy `version` (`CoEvolution.sample_ahead`)."""

    round: int
    version: int
    problems: list[Problem]
    pending: list[Pending[GradedAttempts]]


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
        self.layout = RunLayout(Path(run_dir))
        self.heldout = world.heldout()
        self.validation = world.validation()  # evaluated beside the held-out set, to choose settings by
        # No problem of either evaluation set is trained on, and Teacher and Generator problems that
        # overlap one are rejected (decontam.py).
        self.kept_out_ids = {p.id for p in self.heldout + self.validation}
        self.contamination = build_index(config, self.heldout + self.validation)
        health = config.health  # the run's problems so far, for the near-duplicate rate (filled on first use)
        self.near_duplicates = NearDuplicates(health.near_duplicate_similarity, health.num_perm, health.shingle)
        self.policy_version = 0
        self.generator_version = 0  # the version the Generator holds (a stage that trains it moves it)
        self.learner_version = 0  # the published version the Learner holds, i.e. could restore from
        self.unpublished: LearnBatch | None = None  # an update the Learner made that is not yet published
        self.policy: PolicyRef | None = None  # what the Solvers hold (None: the base model)
        self.solvers_asleep = False  # put to sleep for the Learner's update (`sleep_solvers`)
        self.round = 0
        self.on_stage = on_stage or (lambda stage: None)
        self.base_evaluation: EvalResult | None = None  # set by the runner: rounds report their drop from it
        self.base_validation: EvalResult | None = None  # the same on the validation set
        self.ahead: SampledAhead | None = None  # async mode: the next round's attempts, being sampled

    # -- stages

    @contextmanager
    def _stage(self, name: str, state: RoundState) -> Iterator[StageTransaction]:
        """Run one stage; on success commit its held store writes together with the stage's
        record (one transaction), so a crash leaves all of the stage in the store or none of it."""
        kill_point(f"stage:{name}", state.round)
        self.on_stage(name)
        start = time.perf_counter()
        tx = StageTransaction(self.roles.store)
        yield tx
        state.seconds[name] = state.seconds.get(name, 0.0) + time.perf_counter() - start
        state.done.append(name)
        state.rng = capture_rng()
        kill_point(f"commit:{name}", state.round)
        tx.commit(state.record(name))

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
        schedule: list[Stage] = stages()
        for stage in schedule:
            if stage.name not in state.done:
                with self._stage(stage.name, state) as tx:
                    stage.run(self, tx, state)
        assert state.evaluation is not None  # the evaluate stage has run
        evaluation = state.evaluation_result or EvalResult.from_dict(state.evaluation)
        return RoundReport(
            round, state.policy_version, evaluation, dict(state.metrics), dict(state.seconds), dict(state.by_source)
        )

    # -- what the stages share

    def attempt(
        self, problems: Sequence[Problem], round: int, state: RoundState, purpose: str = "attempt"
    ) -> list[Attempt]:
        """All attempts of a round, split across the Solver actors, run in parallel; their grades
        (and those that timed out) are counted in `state`'s metrics."""
        return self.collect_attempts(self.start_attempts(problems, round, purpose), state)

    def start_attempts(
        self, problems: Sequence[Problem], round: int, purpose: str = "attempt"
    ) -> list[Pending[GradedAttempts]]:
        """Send the attempts at `problems` to the Solvers (one even share each); `collect_attempts` waits."""
        seed = round_seed(self.config.experiment.seed, round, purpose)
        chunks = split_evenly(problems, len(self.roles.solvers))
        return [
            solver.call(SolverRole.attempt, chunk, round, seed + i)
            for i, (solver, chunk) in enumerate(zip(self.roles.solvers, chunks))
            if chunk
        ]

    def collect_attempts(self, pending: Sequence[Pending[GradedAttempts]], state: RoundState) -> list[Attempt]:
        results = [p.result() for p in pending]
        self.count_grades(state, sum(map(len, results)), sum(r.timeouts for r in results))
        self.count_rollout(state, results)
        return [attempt for result in results for attempt in result]

    # -- async mode (loop.mode=async): one-step-off sampling

    def sample_ahead(self, reader: StageTransaction, round: int) -> None:
        """In async mode, select round `round`'s problems now and start the Solvers' attempts at them
        with the current policy; the Learner trains meanwhile, and that round's select and attempt
        stages take them (`ahead_of`). A Solver runs its calls in order, so the new policy it is sent
        next is loaded after these attempts are sampled. Nothing is stored before those stages commit:
        a run killed in between samples that round again on resume, with the policy then current."""
        if self.config.loop.mode != "async" or round > self.config.loop.rounds:
            return
        problems = select_problems(self, reader, round)
        self.ahead = SampledAhead(round, self.policy_version, problems, self.start_attempts(problems, round))

    def ahead_of(self, round: int) -> SampledAhead | None:
        """What `sample_ahead` started for `round` (None: nothing, e.g. the first round or a resumed one)."""
        return self.ahead if self.ahead is not None and self.ahead.round == round else None

    @staticmethod
    def count_rollout(s: RoundState, results: Sequence[GradedAttempts]) -> None:
        """The round's sampling throughput into its metrics: tokens sampled over the seconds the
        Solvers spent in their engines (they sample side by side: the slowest one's), over all of
        the round's rollouts (attempts, synthesis screening); and the Solvers' peak GPU memory."""
        m = s.metrics
        m["rollout/tokens"] = m.get("rollout/tokens", 0) + sum(a.num_tokens for r in results for a in r)
        m["rollout/sample_seconds"] = m.get("rollout/sample_seconds", 0.0) + max(
            (r.sample_seconds for r in results), default=0.0
        )
        if m["rollout/sample_seconds"] > 0:
            m["rollout/tokens_per_second"] = m["rollout/tokens"] / m["rollout/sample_seconds"]
        peak = max((r.peak_gpu_memory_gib for r in results), default=0.0)
        m["solver/peak_gpu_memory_gib"] = max(m.get("solver/peak_gpu_memory_gib", 0.0), peak)

    @staticmethod
    def count_grades(s: RoundState, grades: int, timeouts: int) -> None:
        """Grades and those that ran past verifier.timeout_s (counted wrong) into the round's metrics
        (verify/grades, verify/timeouts), committed with the stage that graded them."""
        s.metrics["verify/grades"] = s.metrics.get("verify/grades", 0) + grades
        s.metrics["verify/timeouts"] = s.metrics.get("verify/timeouts", 0) + timeouts

    def warn_on_timeouts(self, s: RoundState) -> None:
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

    def evaluate_policy(self, s: RoundState, heldout: bool = True) -> None:
        """Greedy evaluation of the Solvers' current policy on the held-out set (unless not
        `heldout`) and the validation set, into the round's state."""
        if heldout:
            evaluation = self._evaluate(s, self.heldout)
            s.evaluation, s.evaluation_result = evaluation.to_dict(), evaluation
            s.metrics.update(evaluation.metrics("eval"))
        if self.validation:
            validation = self._evaluate(s, self.validation)
            s.validation, s.validation_result = validation.to_dict(), validation
            s.metrics.update(validation.metrics("validation"))
        s.metrics["policy_version"] = s.policy_version

    def _evaluate(self, s: RoundState, problems: list[Problem]) -> EvalResult:
        cfg = self.config.evaluation
        solver = self.roles.solvers[0]
        evaluation: EvalResult = solver.call(SolverRole.evaluate, problems, cfg.max_new_tokens, cfg.batch_size).result()
        self.count_grades(s, evaluation.n, evaluation.timeouts)
        return evaluation

    def load_policy(self, policy: PolicyRef | None) -> None:
        """Every Solver switches to `policy` (they load it in parallel), waking first if asleep."""
        self.policy = policy
        method = SolverRole.wake_up if self.solvers_asleep else SolverRole.load_policy
        for pending in [s.call(method, policy) for s in self.roles.solvers]:
            pending.result()
        self.solvers_asleep = False

    def sleep_solvers(self) -> None:
        """With `solver.sleep_while_learning` (Config.solvers_sleep_while_learning), the Solvers give
        their GPU memory back until `load_policy` wakes them with the Learner's new policy."""
        if not self.config.solvers_sleep_while_learning:
            return
        for pending in [s.call(SolverRole.sleep) for s in self.roles.solvers]:
            pending.result()
        self.solvers_asleep = True

    def adapter_path(self, version: int) -> str | None:
        """Where policy `version` is kept in the run directory (None: version 0 is the base model)."""
        return str(self.layout.policy(version)) if version else None

    # -- checkpoints: the roles' files travel to and from the driver, the one writer of the run
    # directory (curriculum/rundir.py)

    def save_policy(self, checkpoint: PolicyRef) -> None:
        """The Learner's checkpoint of a version it published (adapter, optimizer) into the run directory."""
        checkpoint.files.write(self.layout.policy(checkpoint.version))

    def policy_checkpoint(self, version: int, everything: bool = False) -> PolicyRef:
        """Policy `version` read back from the run directory: its adapter (for Solvers), or every
        file of its checkpoint (`everything`, for the Learner)."""
        try:
            return PolicyRef.read(
                version, self.layout.policy(version), None if everything else ADAPTER_FILES
            ).detached()
        except FileNotFoundError as exc:
            raise CurriculumError(f"cannot restore policy v{version} from the run directory: {exc}") from None

    def save_generator(self, version: int, checkpoint: FolderFiles) -> None:
        """The Generator's checkpoint of `version` into the run directory, keeping the version before
        it too (a run killed before its distil stage commits goes back one version)."""
        checkpoint.write(self.layout.generator_version(version))
        for old in self.layout.generator_versions()[:-GENERATOR_CHECKPOINTS_KEPT]:
            shutil.rmtree(old, ignore_errors=True)

    def forget(self, round: int) -> None:
        """Once round `round` is complete, drop what no one reads again (Checkpoint stage, idempotent):
        the token arrays of the attempts loop.max_staleness + 1 rounds back (a Learner trains on its
        round's attempts, sampled up to max_staleness versions before; GRPO reads their log-probs),
        unless store.keep_token_arrays; and the policy checkpoints past checkpoint.keep_last and
        checkpoint.keep_every, and every optimizer state but the newest version's (a resumed
        Learner restores the last committed version, `restore`; the Solvers load it too)."""
        stale = round - (self.config.loop.max_staleness + 1)
        if stale >= 0 and not self.config.store.keep_token_arrays:
            self.roles.store.call(Store.forget_token_arrays, stale).result()
        keep = self.config.checkpoint
        newest = self.policy_version
        for folder in self.layout.policies():
            version = int(folder.name.removeprefix("policy_v"))
            if version >= newest:  # the current one (a later one is a publish not yet committed)
                continue
            if version > newest - keep.keep_last or (keep.keep_every and version % keep.keep_every == 0):
                for file in folder.iterdir():
                    if file.name not in ADAPTER_FILES:  # the optimizer state: only a Learner restores it
                        shutil.rmtree(file) if file.is_dir() else file.unlink()
            else:
                shutil.rmtree(folder)

    def generator_checkpoint(self, version: int) -> FolderFiles | None:
        """The Generator's checkpoint of `version` from the run directory (None for 0, the untrained one)."""
        if not version:
            return None
        folder = self.layout.generator_version(version)
        try:
            return FolderFiles.read(folder)
        except FileNotFoundError:
            kept = [p.name for p in self.layout.generator_versions()] or "none"
            raise CurriculumError(
                f"no Generator checkpoint of version {version} in {folder.parent} (have {kept})"
            ) from None

    def problems_of(self, reader: StageTransaction, state: RoundState) -> list[Problem]:
        if state.problems is None:  # a resumed round: read the selection back from the store
            state.problems = reader.read(StoreQueries.get_problems, state.problem_ids)
        return state.problems

    def attempts_by_problem(self, reader: StageTransaction, state: RoundState) -> dict[str, list[Attempt]]:
        if state.attempts is None:  # a resumed round: read this round's attempts back from the store
            state.attempts = [
                a
                for a in reader.read(StoreQueries.round_attempts, state.round, state.problem_ids)
                if a.policy_version >= state.start_version
            ]
        return group_by_problem(state.attempts)

    def failures(self, reader: StageTransaction, s: RoundState) -> list[Failure]:
        by_problem = self.attempts_by_problem(reader, s)
        return [
            Failure(p, tuple(by_problem[p.id]))
            for p in self.problems_of(reader, s)
            if by_problem[p.id] and not all(a.correct for a in by_problem[p.id])
        ]

    def known_ids(self, reader: StageTransaction) -> set[str]:
        """Ids a new problem must not have: every stored problem and every held-out or validation one."""
        return set(reader.read(StoreQueries.problem_ids)) | self.kept_out_ids

    def admit(
        self,
        tx: StageTransaction,
        drafts: list[Problem],
        rejected: Sequence[RejectedDraft],
        source: DraftSource,
        round: int,
        stored: set[str],
    ) -> dict[str, float]:
        """The gate every model-written problem passes, whatever wrote it (admission.py): form,
        decontamination, duplicates and the oracle. Stores the admitted problems and every
        rejected draft with its reason; returns `<source>/...` counts."""
        drafts, malformed = admission.screen_form(drafts, source, round)
        drafts, contaminated = self.decontaminate(drafts, source, round)
        drafts, screened = admission.screen(drafts, stored, self.kept_out_ids, self.world.oracle(), source, round)
        rejected = admission.sanitize([*rejected, *malformed, *contaminated, *screened])
        tx.append(drafts)
        tx.append(rejected)
        total = len(drafts) + len(rejected)
        return {
            f"{source}/accepted": len(drafts),
            f"{source}/rejected": len(rejected),
            f"{source}/acceptance_rate": len(drafts) / total if total else 0.0,
            f"{source}/contaminated": len(contaminated),
            **admission.rejection_metrics(rejected, source),
        }

    def decontaminate(
        self, problems: list[Problem], source: str, round: int
    ) -> tuple[list[Problem], list[RejectedDraft]]:
        """(clean problems, "contaminated" rejected drafts) against the configured evaluation sets."""
        if self.contamination is None:
            return problems, []
        return self.contamination.split(problems, source, round)

    # -- resume

    def resume(self) -> RoundState | None:
        """Bring the roles back to the last completed stage recorded in the store and return its
        state (None for a fresh store): the Learner's adapter and optimizer and the Solvers'
        policy from the published version, the Generator from its checkpoint, the driver's RNGs."""
        state = last_state(self.roles.store.call(Store.stage_records, last_round=True).result())
        if state is None:
            return None
        self.round, self.policy_version, self.generator_version = (
            state.round,
            state.policy_version,
            state.generator_version,
        )
        self.learner_version, self.unpublished, self.policy = state.policy_version, None, None
        self.ahead = None  # async mode: attempts sampled ahead died with the run; that round samples them again
        for role in self.roles.all():
            self.restore(role)
        restore_rng(state.rng)
        return state

    def restore(self, role: Role[Any]) -> None:
        """Bring a freshly built role to the loop's current state: used on resume, and by the Ray
        proxy after it restarts a dead actor (agents/proxy.py).

        A Learner that dies after an update and before that update is published gets the published
        version back and makes the update again, so the `publish` sent again publishes it: a
        policy version never advances without the update that made it."""
        roles = self.roles
        if role in roles.solvers:
            role.call(SolverRole.load_policy, self._current_policy()).result()
        elif role is roles.learner:
            if self.learner_version:
                checkpoint = self.policy_checkpoint(self.learner_version, everything=True)
                roles.learner.call(LearnerRole.restore, checkpoint).result()
            if self.unpublished is not None:
                roles.learner.call(LearnerRole.learn, self.unpublished).result()
        elif role is roles.generator and roles.generator is not None:
            version = self.generator_version
            roles.generator.call(GeneratorRole.restore, version, self.generator_checkpoint(version)).result()

    def _current_policy(self) -> PolicyRef | None:
        """What the Solvers hold: the reference the Learner gave when it published the current version,
        or (a resumed run) that version's adapter read back from the run directory."""
        if not self.policy_version:
            return None
        if self.policy is None or self.policy.version != self.policy_version:
            self.policy = self.policy_checkpoint(self.policy_version)
        return self.policy

    # -- round 0: the seed set

    def prepare_seeds(self, evaluate_base: bool = False) -> RoundState:
        """Seed problems where the base policy succeeds within the seed band (Socratic-Zero: 30-70%).

        Candidates (`world.seed_candidates`) are screened with k attempts each and chosen as a
        round's problems are (`select_round_problems` with the seed band): the in-band ones closest
        to 1/2 first; if too few are in band, failed and solved ones fill up to
        `world.seed_set_size` (reported). With `evaluate_base` the base model (policy v0) is first
        evaluated on the held-out set (a real model; the toy one was evaluated when it was built), and
        on the validation set where the world has one.
        Round 0 has this one stage, "seed"; its state carries the metrics and that evaluation.
        """
        sel, size = self.config.selection, self.config.world.seed_set_size
        state = RoundState(round=0, start_version=0, policy_version=0, generator_version=self.generator_version)
        with self._stage("seed", state) as tx:
            if evaluate_base or self.validation:  # the toy base's held-out table comes with the model
                self.evaluate_policy(state, heldout=evaluate_base)
            rng = random.Random(round_seed(self.config.experiment.seed, 0, "seed-candidates"))
            candidates: dict[str, Problem] = {}
            for problem in self.world.seed_candidates(sel.seed_candidates, rng):
                if problem.id not in self.kept_out_ids:
                    candidates[problem.id] = problem
            attempts = self.attempt(list(candidates.values()), 0, state)
            self.warn_on_timeouts(state)
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
                    round_seed(self.config.experiment.seed, 0, "seed-select"),
                    fresh_fraction=0,
                    failed_fraction=sel.failed_fraction,
                    solved_fraction=sel.solved_fraction,
                    solved_by_level=sel.solved_by_level,
                )
            ]
            banded = {pid for pid, r in rate.items() if in_band(r, sel.seed_band_low, sel.seed_band_high)}
            tx.append([self.world.screened(candidates[pid], rate[pid]) for pid in chosen])
            tx.append([a for pid in chosen for a in by_problem[pid]])
            state.metrics.update(
                {
                    "seeds": len(chosen),
                    "seeds_in_band": sum(pid in banded for pid in chosen),
                    "seed_candidates": len(candidates),
                }
            )
        return state
