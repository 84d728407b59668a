"""The stages of a round, one object each, in the order they run (`STAGES`).

A stage reads and extends the round's `RoundState` and writes to the store only through its
`StageTransaction`, which the loop commits with the stage's record when it ends (run/loop.py).
Shared steps (attempting, admitting drafts, evaluating) are the loop's methods.
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING, Protocol

from curriculum.curricula import health, synthesis, weakness
from curriculum.curricula.label_quality import label_agreement, reference_agreement
from curriculum.curricula.selection import gaussian_usefulness
from curriculum.curricula.selection_sql import select_configured
from curriculum.errors import CurriculumError
from curriculum.evaluation import drops_from_base
from curriculum.faults import kill_point
from curriculum.files import atomic_write_json
from curriculum.records import PolicyVersion, Problem, RejectedDraft, RoundStats
from curriculum.roles.api import GeneratorRole, LearnerRole, TeacherRole
from curriculum.roles.teacher.base import Failure, call_metrics
from curriculum.run.resume import RoundState, round_seed
from curriculum.run.transaction import StageTransaction
from curriculum.store.queries import StoreQueries, StoreReader
from curriculum.training.batch import Group, LearnBatch

if TYPE_CHECKING:
    from curriculum import records
    from curriculum.run.loop import CoEvolution

log = logging.getLogger(__name__)


class Stage(Protocol):
    name: str

    def run(self, loop: CoEvolution, tx: StageTransaction, s: RoundState) -> None: ...


class Select:
    """The round's problems, from the store's pools by solve rate (selection.py); in async mode,
    those the round before selected for it while it trained (`CoEvolution.sample_ahead`)."""

    name = "select"

    def run(self, loop: CoEvolution, tx: StageTransaction, s: RoundState) -> None:
        ahead = loop.ahead_of(s.round)
        s.problems = ahead.problems if ahead is not None else select_problems(loop, tx, s.round)
        s.problem_ids = [p.id for p in s.problems]
        s.metrics["selected"] = len(s.problems)


def select_problems(loop: CoEvolution, reader: StageTransaction, round: int) -> list[Problem]:
    """Round `round`'s problems from what the store holds now."""
    config = loop.config
    n = config.loop.selected_per_round(config.synthesis)  # synthesis screening shares the budget
    # One query on the store's side, over its per-problem counts: only the chosen problems travel
    # (selection_sql.py; the same picks as selection.select_round_problems, tested).
    return select_configured(reader, config.selection, n, _seed(loop, round, "select"))


class Attempt:
    """k graded attempts per selected problem, with the policy the round started with; in async
    mode, with the policy before it, sampled while the round before trained (`sample_ahead`)."""

    name = "attempt"

    def run(self, loop: CoEvolution, tx: StageTransaction, s: RoundState) -> None:
        ahead, loop.ahead = loop.ahead_of(s.round), None
        if ahead is not None and [p.id for p in ahead.problems] == s.problem_ids:
            s.attempts = loop.collect_attempts(ahead.pending, s)
            # What they were sampled with (a Solver restarted meanwhile samples with the policy then current).
            s.start_version = min((a.policy_version for a in s.attempts), default=ahead.version)
        else:
            s.attempts = loop.attempt(loop.problems_of(tx, s), s.round, s)
        tx.append(s.attempts)
        attempts, metrics = s.attempts, s.metrics
        rates = [sum(a.correct for a in atts) / len(atts) for atts in loop.attempts_by_problem(tx, s).values()]
        metrics["attempts"] = len(attempts)
        metrics["attempt/policy_lag"] = s.policy_version - s.start_version  # async: 1 when sampled ahead
        metrics["tokens_per_attempt"] = sum(a.num_tokens for a in attempts) / max(len(attempts), 1)
        metrics["selected_solve_rate_mean"] = sum(rates) / max(len(rates), 1)
        for low in range(0, 100, 25):  # histogram of the selected problems' solve rates
            high = low + 25
            metrics[f"selected_solve_rate_hist/{low:02d}_{high:02d}"] = sum(
                low / 100 <= r < high / 100 or (high == 100 and r == 1.0) for r in rates
            )


class Learn:
    """The Learner's update on the round's groups, published as the next version; the Solvers load it."""

    name = "learn"

    def run(self, loop: CoEvolution, tx: StageTransaction, s: RoundState) -> None:
        round, learner = s.round, loop.roles.learner
        problems, by_problem = loop.problems_of(tx, s), loop.attempts_by_problem(tx, s)
        # The Learner builds its own training data (DPO pairs, GRPO groups, SFT examples) from the
        # batch: `learner.algorithm` picks it (roles/learner.py), the loop does not branch on it.
        batch = LearnBatch(
            round=round,
            policy_version=loop.policy_version,
            groups=tuple(
                Group(p, tuple(by_problem[p.id]), loop.prompt(p.question)) for p in problems if by_problem[p.id]
            ),
            replay=tuple(Group(p, (a,), loop.prompt(p.question)) for p, a in replay_successes(loop, tx, s)),
        )
        loop.sleep_solvers()  # when they share a GPU with the Learner; `load_policy` below wakes them
        learning = learner.call(LearnerRole.learn, batch)
        loop.sample_ahead(tx, round + 1)  # async mode: the next round is sampled while the Learner trains
        outcome = learning.result()
        loop.unpublished = batch  # until published, a restarted Learner redoes it (`restore`)
        kill_point("learn:after-update", round)
        version = loop.policy_version + 1
        adapter = loop.adapter_path(version)
        assert adapter is not None  # a version after the base model's
        checkpoint = learner.call(LearnerRole.publish, version).result()
        loop.save_policy(checkpoint)  # the driver writes the run directory (curriculum/rundir.py)
        loop.learner_version, loop.unpublished = version, None
        tx.append(outcome.pairs)
        tx.append(
            [
                PolicyVersion(
                    version=version,
                    round=round,
                    parent_version=loop.policy_version,
                    adapter_path=adapter,
                    algorithm=loop.config.learner.algorithm,
                    metrics={k: float(v) for k, v in outcome.metrics.items()},
                )
            ]
        )
        loop.load_policy(checkpoint.adapter())
        loop.policy_version = s.policy_version = version
        s.metrics["pairs"] = len(outcome.pairs)
        s.metrics["pairs_with_reference"] = sum(p.chosen_is_reference for p in outcome.pairs)
        s.metrics["replayed"] = len(batch.replay)  # earlier rounds' successes anchored (retention.replay_per_level)
        s.metrics.update({f"learner/{k}": float(v) for k, v in outcome.metrics.items()})


class Teach:
    """The Teacher's variants of the round's failures, through the admission gate (Socratic-Zero)."""

    name = "teach"

    def run(self, loop: CoEvolution, tx: StageTransaction, s: RoundState) -> None:
        teacher = loop.roles.teacher
        if not loop.config.teacher.enabled or teacher is None:  # recipes without the Socratic Teacher
            return
        stored = set(tx.read(StoreQueries.problem_ids))
        taught = teacher.call(TeacherRole.teach, loop.failures(tx, s), stored | loop.kept_out_ids, s.round).result()
        tx.append(taught.calls)  # an LLM Teacher's audited model calls
        s.metrics.update(loop.admit(tx, taught.problems, taught.rejected, "teacher", s.round, stored))
        s.metrics.update(call_metrics(taught.calls, "teacher"))


class Synthesize:
    """SwS: mine weaknesses from the store's accuracy history, write `synthesis.budget` variants
    aimed at their concepts (or at uniformly drawn ones), screen them with the Solver (the policy
    just published) and keep those inside the band (synthesis.py)."""

    name = "synthesize"

    def run(self, loop: CoEvolution, tx: StageTransaction, s: RoundState) -> None:
        cfg, round = loop.config.synthesis, s.round
        if not cfg.enabled:
            return
        report = weakness.mine(tx, loop.config.weakness)
        rng = random.Random(_seed(loop, round, "synthesis"))
        targets = synthesis.plan(cfg, report, rng)
        if cfg.kind == "llm":  # the Teacher's model writes and labels the drafts (roles/teacher/llm_synthesis.py)
            teacher = loop.roles.teacher
            if teacher is None:  # the config refuses this recipe first (config.py)
                raise CurriculumError("synthesis.kind=llm writes with the Teacher's model: set teacher.kind=llm")
            seed = _seed(loop, round, "synthesis-llm")
            drafts = teacher.call(TeacherRole.synthesize, targets, loop.known_ids(tx), round, seed).result()
            tx.append(drafts.calls)
            s.metrics.update(call_metrics(drafts.calls, "synthesis"))
        else:
            mutator = loop.world.mutator()
            if mutator is None:  # the config refuses this recipe first (config.py)
                raise CurriculumError(
                    "synthesis.kind=symbolic varies problems with the world's mutation operators; "
                    f"world.name={loop.config.world.name} has none"
                )
            drafts = synthesis.draft(targets, mutator, cfg.mutations, loop.known_ids(tx), round, rng)
        clean, contaminated = loop.decontaminate(drafts.problems, "synthesis", round)
        attempts = loop.attempt(clean, round, s, purpose="synthesis")
        screened = synthesis.screen(clean, attempts, cfg.band_low, cfg.band_high, round)
        tx.append(screened.kept)
        tx.append(screened.attempts)
        tx.append([*drafts.rejected, *contaminated, *screened.rejected])
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


class Distil:
    """The Generator learns from (failed problem -> Teacher problem) pairs weighted by how useful
    each Teacher problem proved, then (after warm-up) proposes problems of its own: answered by the
    world's oracle, or (a world without one) labelled by the LLM Teacher's vote; and the agreement of
    the round's model-labelled answers with the world's oracle, or without one, of the labeller's
    vote on dataset problems with the dataset's reference answer."""

    name = "distil"

    def run(self, loop: CoEvolution, tx: StageTransaction, s: RoundState) -> None:
        # The store now holds the Teacher's problems of this round: known = before teach + taught.
        failures, known = loop.failures(tx, s), loop.known_ids(tx)
        s.metrics.update(self._distil(loop, tx, s, failures, known))
        loop.generator_version = s.generator_version = int(s.metrics.get("generator/version", s.generator_version))
        oracle = loop.world.oracle()
        solve = oracle.solve if oracle is not None else (lambda question: None)  # no oracle: counts only
        s.metrics.update(label_agreement(tx.read(StoreQueries.problems, round=s.round), solve).metrics("labels"))

    @staticmethod
    def _distil(
        loop: CoEvolution, tx: StageTransaction, s: RoundState, failures: list[Failure], known: set[str]
    ) -> dict[str, float]:
        gen_cfg, generator, round = loop.config.generator, loop.roles.generator, s.round
        if generator is None or not gen_cfg.enabled:
            return {}
        examples = distil_examples(tx, round, gen_cfg.window_rounds)
        metrics, checkpoint = generator.call(GeneratorRole.train, examples).result()
        out = {f"generator/{k}": float(v) for k, v in metrics.items()}
        if checkpoint is not None:  # kept by the driver; a restarted Generator is sent it back
            loop.save_generator(int(out["generator/version"]), checkpoint)
        # The Generator now holds this version: a restarted one proposes with it.
        loop.generator_version = int(out.get("generator/version", loop.generator_version))
        out["generator/mean_usefulness"] = (
            sum(gaussian_usefulness(r, gen_cfg.usefulness_center, gen_cfg.usefulness_width) for *_, r in examples)
            / len(examples)
            if examples
            else 0.0
        )
        if round > gen_cfg.warmup_rounds and failures and gen_cfg.proposals_per_round:
            proposed, rejected = generator.call(
                GeneratorRole.propose, [f.problem for f in failures], gen_cfg.proposals_per_round, round
            ).result()
            if loop.world.oracle() is None:  # unlabelled drafts: the LLM Teacher's labeller votes
                proposed, more, labels = Distil._label(loop, tx, proposed, known, round)
                rejected = [*rejected, *more]
                out.update(labels)
            out.update(loop.admit(tx, proposed, rejected, "generator", round, known - loop.kept_out_ids))
        return out

    @staticmethod
    def _label(
        loop: CoEvolution, tx: StageTransaction, drafts: list[Problem], known: set[str], round: int
    ) -> tuple[list[Problem], list[RejectedDraft], dict[str, float]]:
        """(labelled drafts, rejected ones, metrics): the vote on each draft, and on up to
        `generator.label_checks` of their parents that carry a dataset's reference answer."""
        teacher = loop.roles.teacher
        if teacher is None:  # the config refuses this recipe first (config.py)
            raise CurriculumError("the Generator's drafts on a world without an oracle need teacher.kind=llm's labels")
        parent_ids = list(dict.fromkeys(d.parent_id for d in drafts if d.parent_id))
        parents = tx.read(StoreQueries.get_problems, parent_ids)
        references = [p for p in parents if p.answer_source == "dataset"][: loop.config.generator.label_checks]
        labelled = teacher.call(TeacherRole.label, drafts, known, round, references).result()
        tx.append(labelled.calls)  # label calls link to their draft (`curriculum lineage` shows the votes)
        metrics = call_metrics(labelled.calls, "generator")
        metrics.update(reference_agreement([check.agreed for check in labelled.checks]).metrics("labels"))
        return labelled.problems, labelled.rejected, metrics


def distil_examples(reader: StoreReader, round: int, window_rounds: int | None) -> list[tuple[Problem, Problem, float]]:
    """The Generator's training examples in round `round`: (failed problem, the Teacher's problem made
    from it, its solve rate) for the Teacher's problems of the last `window_rounds` rounds (None: all),
    the window applied by the store's query, so the read does not grow with the run."""
    since = None if window_rounds is None else round - window_rounds + 1
    children = [p for p in reader.read(StoreQueries.problems, source="teacher", since_round=since) if p.parent_id]
    rates = reader.read(StoreQueries.solve_rates, problem_ids=[p.id for p in children])
    parent_ids = list({c.parent_id for c in children if c.parent_id})
    parents = {p.id: p for p in reader.read(StoreQueries.get_problems, parent_ids)}
    return [(parents[c.parent_id], c, rates[c.id].rate) for c in children if c.id in rates and c.parent_id in parents]


class Evaluate:
    """Greedy held-out (and validation) evaluation of the new policy, its drop from the base, and the
    round's additions."""

    name = "evaluate"

    def run(self, loop: CoEvolution, tx: StageTransaction, s: RoundState) -> None:
        loop.evaluate_policy(s)
        loop.warn_on_timeouts(s)  # the round's last grades are in
        if loop.base_evaluation is not None and s.evaluation_result is not None:
            s.metrics.update(drops_from_base(loop.base_evaluation, s.evaluation_result, loop.world.report_by))
        if loop.base_validation is not None and s.validation_result is not None:
            s.metrics.update(
                drops_from_base(loop.base_validation, s.validation_result, loop.world.report_by, "validation")
            )
        s.by_source = tx.read(StoreQueries.problem_counts_by_source, s.round)
        s.metrics.update({f"problems_added/{source}": n for source, n in s.by_source.items()})
        if loop.config.health.enabled:
            metrics, warning = health.observe_round(tx, s.round, loop.near_duplicates, loop.config.health)
            s.metrics.update(metrics)
            if warning:
                log.warning(warning)


class Snapshot:
    """The round's metrics into the store, and a Parquet snapshot of it (what `inspect` reads)."""

    name = "snapshot"

    def run(self, loop: CoEvolution, tx: StageTransaction, s: RoundState) -> None:
        stats = RoundStats(
            round=s.round,
            policy_version=s.policy_version,
            metrics={k: float(v) for k, v in s.metrics.items()},
            seconds=dict(s.seconds),
        )
        tx.append([stats])
        store = loop.config.store
        tx.export_snapshot(str(loop.layout.snapshots), s.round, store.snapshot_compact_every, store.keep_token_arrays)


class Checkpoint:
    """The round's checkpoint pointer. The adapter and optimizer (`policy_vNNNN`) and the Generator
    (`generator/vNNNN`) were written atomically by the driver when they were made; LATEST goes last.
    Then what no one reads again goes (`CoEvolution.forget`): a stage killed in between runs again
    on resume and forgets the same things."""

    name = "checkpoint"

    def run(self, loop: CoEvolution, tx: StageTransaction, s: RoundState) -> None:
        kill_point("checkpoint:before-latest", s.round)
        atomic_write_json(
            loop.layout.latest,
            {
                "round": s.round,
                "policy_version": s.policy_version,
                "adapter_path": loop.adapter_path(s.policy_version),
                "generator_version": s.generator_version,
            },
        )
        loop.forget(s.round)  # after LATEST: the version it names is kept


def stages() -> list[Stage]:
    """A round's stages, in order."""
    return [Select(), Attempt(), Learn(), Teach(), Synthesize(), Distil(), Evaluate(), Snapshot(), Checkpoint()]


STAGES = tuple(stage.name for stage in stages())


def replay_successes(
    loop: CoEvolution, reader: StageTransaction, s: RoundState
) -> list[tuple[Problem, records.Attempt]]:
    """Earlier rounds' verified successes the Learner anchors besides this round's
    (`learner.retention.replay_per_level`)."""
    retention = loop.config.learner.retention
    if not retention.replay_per_level:
        return []
    return reader.read(
        StoreQueries.replay_successes,
        s.round,
        retention.replay_per_level,
        retention.anchor_min_solve_rate,
        s.problem_ids,
        _seed(loop, s.round, "replay"),
    )


def _seed(loop: CoEvolution, round: int, purpose: str) -> int:
    return round_seed(loop.config.experiment.seed, round, purpose)
