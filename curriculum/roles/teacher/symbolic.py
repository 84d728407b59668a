"""The symbolic Teacher: variants of each failed problem made by the world's mutation operators,
with exact answers from its oracle."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

from curriculum.config import TeacherConfig
from curriculum.records import RejectedDraft
from curriculum.roles.teacher.base import Failure, Teacher, TeachingResult, mutations_for
from curriculum.worlds import Mutator


class SymbolicTeacher(Teacher):
    """Variants of each failed problem aimed at the Solver's reach, with exact answers from the world."""

    def __init__(self, mutator: Mutator, config: TeacherConfig, seed: int, name: str = "teacher"):
        self.mutator = mutator
        self.config = config
        self.seed = seed
        self.name = name

    def teach(self, failures: Sequence[Failure], known_ids: Iterable[str], round: int) -> TeachingResult:
        # The rng depends only on (seed, round) so a retried or resumed round writes the same problems.
        rng = random.Random(f"teacher:{self.seed}:{round}")
        known = set(known_ids)
        result = TeachingResult()
        # Hardest failures first: they say most about what the Solver cannot do yet.
        chosen = sorted(failures, key=lambda f: (f.solve_rate, f.problem.id))[: self.config.max_failures]
        for failure in chosen:
            mutations = self.mutations_for(failure)
            for i in range(self.config.variants_per_failure):
                kind = mutations[i % len(mutations)]
                draft = self.mutator.mutate(failure.problem, kind, rng, round=round, source="teacher")
                draft = draft.model_copy(update={"created_by": self.name})
                reason = "duplicate" if draft.id in known else self.mutator.check(draft)
                if reason:
                    result.rejected.append(
                        RejectedDraft(
                            source="teacher",
                            parent_id=failure.problem.id,
                            text=draft.question,
                            reason=reason,
                            detail=f"{kind} variant",
                            round=round,
                            created_by=self.name,
                        )
                    )
                    continue
                known.add(draft.id)
                result.problems.append(draft)
        return result

    def mutations_for(self, failure: Failure) -> list[str]:
        return mutations_for(failure, self.config)
