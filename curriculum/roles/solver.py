"""The Solver: samples k attempts per problem with one policy version and grades them."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from curriculum.config import Extraction, SolverConfig
from curriculum.engines.base import InferenceEngine
from curriculum.evaluation import evaluate
from curriculum.gpu import out_of_memory_names, take_peak_memory_gib
from curriculum.models import prompt_for
from curriculum.records import Attempt, Problem
from curriculum.rundir import policy_dir_name
from curriculum.training.batch import PolicyRef
from curriculum.verify import Verifier


class GradedAttempts(list):
    """A Solver's graded attempts (a plain list of `Attempt`s) with how many of their grades ran
    past `verifier.timeout_s` and count as wrong: the count travels with the result it describes,
    so a call sent again to a restarted Solver reports it again (the loop logs verify/timeouts).
    Also what sampling them cost: seconds in the engine and the peak GPU memory (GiB, 0 on CPU)."""

    timeouts: int = 0
    sample_seconds: float = 0.0
    peak_gpu_memory_gib: float = 0.0


class Solver:
    """`work_dir` holds the policies this Solver received as files (default: a temporary folder)."""

    def __init__(
        self,
        engine: InferenceEngine,
        verifier: Verifier,
        config: SolverConfig,
        extraction: Extraction,
        instruction: str = "",
        name: str = "solver",
        work_dir: str | Path | None = None,
    ):
        self.engine = engine
        self.verifier = verifier
        self.config = config
        self.extraction = extraction  # how answers are read, and what follows each question: the world's
        self.instruction = instruction
        self.name = name
        self.policy_version = 0
        self._work_dir = Path(work_dir) if work_dir is not None else None
        self._temporary: Path | None = None  # the default work_dir, removed by `close`
        self._seconds = {"sample": 0.0, "grade": 0.0}  # where `attempt` spends its time (take_seconds)

    def load_policy(self, policy: PolicyRef | None) -> None:
        """Switch to a published policy version (None: the base model, version 0)."""
        version = 0 if policy is None else policy.version
        adapter = None if policy is None else self._local_adapter(policy)
        if version != self.policy_version or self.engine.adapter_path != adapter:
            self.engine.load_adapter(adapter, version)
            self.policy_version = version

    def sleep(self) -> None:
        """Give the engine's GPU memory back while the Learner trains on the same GPU."""
        self.engine.sleep()

    def wake_up(self, policy: PolicyRef | None) -> None:
        """Wake the engine and load `policy` into it, anew even if it is the version held before."""
        version = 0 if policy is None else policy.version
        adapter = None if policy is None else self._local_adapter(policy)
        self.engine.wake_up()
        self.engine.load_adapter(adapter, version)
        self.policy_version = version

    def _local_adapter(self, policy: PolicyRef) -> str:
        """A folder on this machine holding the policy's adapter: the Learner's own folder when this
        machine sees it with the same bytes (one machine), else a copy written under `work_dir/policies`."""
        files = policy.files
        policies = self.work_dir / "policies"
        uri = policy.uri  # None: read from the run directory, which this node need not see
        folder = Path(uri) if uri is not None and files.found_at(uri) else policies / policy_dir_name(policy.version)
        if not files.found_at(folder):
            files.write(folder)
        for old in policies.glob("policy_v*"):  # copies of earlier versions: the engine holds only this one
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)
        return str(folder)

    @property
    def work_dir(self) -> Path:
        if self._work_dir is None:
            self._temporary = self._work_dir = Path(tempfile.mkdtemp(prefix=f"curriculum-{self.name}-"))
        return self._work_dir

    def attempt(self, problems: Sequence[Problem], round: int, seed: int, progress: bool = False) -> GradedAttempts:
        """`solver.attempts` graded attempts per problem, all prompts in one engine call.

        The seed is derived per round by the caller so a resumed round samples the same attempts.
        """
        if not problems:
            return GradedAttempts()
        k = self.config.attempts
        take_peak_memory_gib()  # the peak of this call only
        start = time.perf_counter()
        prompts = [prompt_for(p.question, self.engine.tokenizer, self.instruction) for p in problems]
        with self._out_of_memory_names():
            samples = self.engine.generate(
                prompts,
                n=k,
                temperature=self.config.temperature,
                top_p=self.config.top_p,
                max_new_tokens=self.config.max_new_tokens,
                seed=seed,
                batch_size=self.config.batch_size,
                progress=progress,
            )
        sampled = time.perf_counter()
        completions = [g.text for per_problem in samples for g in per_problem]
        references = [p.answer for p in problems for _ in range(k)]
        timeouts = self.verifier.timeouts
        grades = self.verifier.grade_many(completions, references, self.extraction)
        attempts = GradedAttempts()
        attempts.timeouts = self.verifier.timeouts - timeouts
        attempts.sample_seconds, attempts.peak_gpu_memory_gib = sampled - start, take_peak_memory_gib()
        for i, (problem, per_problem) in enumerate(zip(problems, samples)):
            for j, generation in enumerate(per_problem):
                grade = grades[i * k + j]
                attempts.append(
                    Attempt(
                        problem_id=problem.id,
                        policy_version=self.policy_version,
                        sample_index=j,
                        round=round,
                        completion=generation.text,
                        extracted_answer=grade.extracted,
                        correct=grade.correct,
                        reward=1.0 if grade.correct else 0.0,
                        num_tokens=generation.num_tokens,
                        logprob=generation.logprob,
                        created_by=self.name,
                        token_ids=list(generation.token_ids),
                        token_logprobs=list(generation.token_logprobs),
                    )
                )
        self._seconds["sample"] += sampled - start
        self._seconds["grade"] += time.perf_counter() - sampled  # grading and the Attempt records
        return attempts

    def take_seconds(self) -> dict[str, float]:
        """Seconds `attempt` spent sampling (prompts in, samples out of the engine) and grading
        (verifier and Attempt records) since the last call."""
        seconds, self._seconds = self._seconds, {"sample": 0.0, "grade": 0.0}
        return seconds

    def evaluate(self, problems: Sequence[Problem], max_new_tokens: int, batch_size: int):
        """Greedy held-out evaluation of the current policy version (an EvalResult)."""

        timeouts = self.verifier.timeouts
        with self._out_of_memory_names():
            result = evaluate(
                self.engine,
                problems,
                self.verifier,
                self.extraction,
                max_new_tokens,
                batch_size,
                instruction=self.instruction,
            )
        result.timeouts = self.verifier.timeouts - timeouts
        return result

    def _out_of_memory_names(self) -> AbstractContextManager[None]:
        """Out of GPU memory while sampling: end the run naming what bounds the engine's share."""
        setting = "solver.vllm.gpu_memory_utilization" if self.config.engine == "vllm" else "solver.batch_size"
        return out_of_memory_names(f"Solver {self.name}", setting)

    def close(self) -> None:
        """Stop the engine and the verifier; remove a temporary work_dir."""
        self.engine.close()
        self.verifier.close()
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
            self._temporary = self._work_dir = None
