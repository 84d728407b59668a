"""The roles as the loop sees them: a typed Protocol per role, and the handle it reaches one through.

A handle (`Role[SolverRole]`, ...) runs a call in this process or in a Ray actor (agents/proxy.py):
`solver.call(SolverRole.attempt, problems, round, seed)` returns at once and `.result()` waits.
The method is named by reference, so a misspelled method or a wrong argument type is a type error
(mypy), and only the proxy turns it into a name. The store is reached the same way through its own
class (`store.call(Store.append, records)`); a stage reads it through a `StoreReader`, which sees
the stage's writes before they are committed (run/stages.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from curriculum.curricula.synthesis import Drafts, Target
from curriculum.evaluation import EvalResult
from curriculum.files import FolderFiles
from curriculum.records import Problem, RejectedDraft
from curriculum.roles.solver import GradedAttempts
from curriculum.roles.teacher.base import Failure, TeachingResult
from curriculum.store import Store
from curriculum.store.queries import StoreReader
from curriculum.training.batch import LearnBatch, LearnOutcome, PolicyRef

__all__ = ["GeneratorRole", "LearnerRole", "Pending", "Role", "Roles", "SolverRole", "StoreReader", "TeacherRole"]

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
T_co = TypeVar("T_co", covariant=True)
P = ParamSpec("P")


class Pending(Protocol[R_co]):
    """A call on its way: `result()` waits for its value (or raises its error)."""

    def result(self) -> R_co: ...


class Role(Protocol[T_co]):
    """A handle on one role object of type `T_co`, wherever it runs."""

    @property
    def name(self) -> str: ...

    def call(self, method: Callable[Concatenate[T_co, P], R], /, *args: P.args, **kwargs: P.kwargs) -> Pending[R]:
        """Send `method(*args, **kwargs)` to the role; a `Pending` argument is handed over as its value."""
        ...


class SolverRole(Protocol):
    """Samples and grades attempts with one policy version at a time (roles/solver.py)."""

    def attempt(self, problems: Sequence[Problem], round: int, seed: int) -> GradedAttempts: ...

    def evaluate(self, problems: Sequence[Problem], max_new_tokens: int, batch_size: int) -> EvalResult: ...

    def load_policy(self, policy: PolicyRef | None) -> None:
        """Switch to a published policy (None: the base model, version 0)."""
        ...

    def sleep(self) -> None:
        """Give the GPU memory back while the Learner trains (`solver.sleep_while_learning`)."""
        ...

    def wake_up(self, policy: PolicyRef | None) -> None:
        """Take the GPU memory again and load `policy` (always anew)."""
        ...

    def close(self) -> None: ...


class LearnerRole(Protocol):
    """Turns a round's graded attempts into an update of the student's adapter (roles/learner.py)."""

    def learn(self, batch: LearnBatch) -> LearnOutcome: ...

    def publish(self, version: int) -> PolicyRef:
        """Write the adapter (and optimizer) as policy `version` on the Learner's node; answers with
        the checkpoint's files (the driver writes them into the run directory)."""
        ...

    def restore(self, checkpoint: PolicyRef) -> int:
        """Back to a published version's checkpoint (sent from the run directory by the driver)."""
        ...


class TeacherRole(Protocol):
    """Writes new problems aimed at the Solver's failures (roles/teacher/)."""

    def teach(self, failures: Sequence[Failure], known_ids: Iterable[str], round: int) -> TeachingResult: ...

    def synthesize(self, targets: Sequence[Target], known_ids: Iterable[str], round: int, seed: int) -> Drafts:
        """SwS drafts written and labelled by the Teacher's model (synthesis.kind=llm)."""
        ...

    def label(
        self, drafts: Sequence[Problem], known_ids: Iterable[str], round: int, references: Sequence[Problem] = ()
    ) -> TeachingResult:
        """The Generator's drafts labelled by the LLM Teacher's vote (world without an oracle), and the
        vote on each reference problem against its answer (roles/teacher/llm_labels.py)."""
        ...

    def close(self) -> None: ...


class GeneratorRole(Protocol):
    """Learns to write problems the way the Teacher does, and proposes its own (roles/generator.py)."""

    def train(self, examples: Sequence[tuple[Problem, Problem, float]]) -> tuple[dict[str, float], FolderFiles | None]:
        """Metrics, and the new version's checkpoint files (None: nothing changed); the driver keeps them."""
        ...

    def propose(self, parents: Sequence[Problem], n: int, round: int) -> tuple[list[Problem], list[RejectedDraft]]:
        """Drafts conditioned on `parents`: answered by the world's oracle, or unlabelled without one."""
        ...

    def restore(self, version: int, checkpoint: FolderFiles | None = None) -> int:
        """Back to `version` from the checkpoint files `train` answered with (none for version 0)."""
        ...


@dataclass
class Roles:
    """Every role of a run, as handles (None: a role the recipe leaves out)."""

    store: Role[Store]
    solvers: list[Role[SolverRole]]
    teacher: Role[TeacherRole] | None
    learner: Role[LearnerRole]
    generator: Role[GeneratorRole] | None = None

    def all(self) -> list[Role[object]]:
        """Every handle, the store first."""
        optional = [role for role in (self.teacher, self.generator) if role is not None]
        return [self.store, *self.solvers, self.learner, *optional]
