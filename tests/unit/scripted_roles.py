"""Scripted roles for loop tests that need a round to run, not a model to learn."""

from curriculum.evaluation import EvalResult
from curriculum.files import FolderFiles
from curriculum.records import Attempt
from curriculum.roles.solver import GradedAttempts
from curriculum.training.batch import ADAPTER_FILES, LearnOutcome, PolicyRef


def policy_ref(version, files=None):
    """A published version with placeholder adapter files (what scripted Solvers are sent), and `files`."""
    placeholder = {name: f"{name} of v{version}".encode() for name in ADAPTER_FILES}
    return PolicyRef(version, f"v{version}", None, FolderFiles("", {**placeholder, **(files or {})}))


class WrongSolver:
    """Four wrong attempts ("answer: 0") at every problem."""

    def attempt(self, problems, round, seed, progress=False):
        return GradedAttempts(
            Attempt(
                problem_id=p.id,
                policy_version=0,
                sample_index=i,
                round=round,
                completion="answer: 0",
                extracted_answer="0",
                correct=False,
                reward=0.0,
                num_tokens=9,
            )
            for p in problems
            for i in range(4)
        )

    def load_policy(self, policy):
        pass

    def evaluate(self, problems, max_new_tokens, batch_size):
        return EvalResult()


class NoOpLearner:
    """Learns nothing; publishes placeholder files."""

    def learn(self, batch):
        return LearnOutcome({"loss": 0.0})

    def publish(self, version):
        return policy_ref(version)

    def restore(self, checkpoint):
        return checkpoint.version
