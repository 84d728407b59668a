"""The role handles are typed: the type checker rejects a misspelled role method and a wrong argument
type at the call site (they would otherwise fail in an actor, rounds into a run)."""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

CALLS = textwrap.dedent(
    """
    from curriculum.records import Problem
    from curriculum.roles.api import Role, SolverRole


    def round_of(solver: Role[SolverRole], problems: list[Problem]) -> int:
        solver.call(SolverRole.attemptt, problems, 1, 7)  # line 7: misspelled method
        solver.call(SolverRole.attempt, problems, "1", 7)  # line 8: a str where the round (int) goes
        return len(solver.call(SolverRole.attempt, problems, 1, 7).result())  # line 9: right
    """
)


def test_the_type_checker_rejects_a_misspelled_method_and_a_wrong_argument_type(tmp_path):
    checked = tmp_path / "calls.py"
    checked.write_text(CALLS)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-incremental",
            str(checked),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    errors = [line for line in done.stdout.splitlines() if line.startswith(str(checked)) and ": error:" in line]
    assert done.returncode == 1, done.stdout + done.stderr
    assert any(":7:" in e and 'has no attribute "attemptt"' in e for e in errors), errors
    assert any(":8:" in e and 'incompatible type "str"; expected "int"' in e for e in errors), errors
    assert len(errors) == 2, errors  # the right call passes
