"""The Solver: samples k attempts per problem with one policy version and grades them."""

from __future__ import annotations

from collections.abc import Sequence

from curriculum.config import Extraction, SolverConfig
from curriculum.engines.base import InferenceEngine
from curriculum.models import prompt_for
from curriculum.records import Attempt, Problem
from curriculum.verify import Verifier


class Solver:
    def __init__(self, engine: InferenceEngine, verifier: Verifier, config: SolverConfig,
                 extraction: Extraction, instruction: str = "", name: str = "solver"):
        self.engine = engine
        self.verifier = verifier
        self.config = config
        self.extraction = extraction  # how answers are read, and what follows each question: the world's
        self.instruction = instruction
        self.name = name
        self.policy_version = 0

    def use_policy(self, version: int, adapter_path: str | None) -> None:
        """Switch to a published policy version (None adapter: the base model)."""
        if version != self.policy_version or self.engine.adapter_path != adapter_path:
            self.engine.load_adapter(adapter_path)
            self.policy_version = version

    def attempt(self, problems: Sequence[Problem], round: int, seed: int, progress: bool = False) -> list[Attempt]:
        """`solver.attempts` graded attempts per problem, all prompts in one engine call.

        The seed is derived per round by the caller so a resumed round samples the same attempts.
        """
        if not problems:
            return []
        k = self.config.attempts
        prompts = [prompt_for(p.question, self.engine.tokenizer, self.instruction) for p in problems]
        samples = self.engine.generate(
            prompts, n=k, temperature=self.config.temperature, top_p=self.config.top_p,
            max_new_tokens=self.config.max_new_tokens, seed=seed, batch_size=self.config.batch_size,
            progress=progress,
        )
        completions = [g.text for per_problem in samples for g in per_problem]
        references = [p.answer for p in problems for _ in range(k)]
        grades = self.verifier.grade_many(completions, references, self.extraction)
        attempts = []
        for i, (problem, per_problem) in enumerate(zip(problems, samples)):
            for j, generation in enumerate(per_problem):
                grade = grades[i * k + j]
                attempts.append(Attempt(
                    problem_id=problem.id, policy_version=self.policy_version, sample_index=j, round=round,
                    completion=generation.text, extracted_answer=grade.extracted, correct=grade.correct,
                    reward=1.0 if grade.correct else 0.0, num_tokens=generation.num_tokens,
                    logprob=generation.logprob, created_by=self.name,
                ))
        return attempts

    def evaluate(self, problems: Sequence[Problem], max_new_tokens: int, batch_size: int):
        """Greedy held-out evaluation of the current policy version (an EvalResult)."""
        from curriculum.report.evaluation import evaluate

        return evaluate(self.engine, problems, self.verifier, self.extraction, max_new_tokens, batch_size,
                        instruction=self.instruction)
