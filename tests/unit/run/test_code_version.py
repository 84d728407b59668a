"""A run pinned to its code: its code version is recorded, a copy of the source is what the rest
of the run imports, and `curriculum resume` refuses other code unless told to continue with it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from curriculum.cli import main
from curriculum.config import from_dict, to_yaml
from curriculum.run import code_version

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def tree(tmp_path):
    """A copy of the project's packages to edit."""
    copy = tmp_path / "tree"
    for package in code_version.PACKAGES:
        shutil.copytree(ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_pin_copies_the_source_and_records_its_version(tmp_path, tree):
    run_dir = tmp_path / "run"
    version = code_version.pin(run_dir, root=tree)
    assert version.source_hash == code_version.source_hash(tree) == code_version.source_hash(run_dir / "code")
    assert (run_dir / "code/curriculum/run/loop.py").read_bytes() == (tree / "curriculum/run/loop.py").read_bytes()
    record = json.loads((run_dir / "code_version.json").read_text())
    assert record["launched"]["source_hash"] == record["current"]["source_hash"] == version.source_hash
    assert code_version.recorded(run_dir) == version
    assert version.git_commit is None and "no git" in version.describe()  # the copy is not a checkout
    assert version.tags()["code.source_hash"] == version.source_hash


def test_the_git_state_names_the_commit_and_hashes_uncommitted_changes(tmp_path, tree):
    def git(*args):
        subprocess.run(["git", "-C", str(tree), *args], check=True, capture_output=True)

    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    clean = code_version.current(tree)
    assert clean.git_commit and clean.uncommitted_hash is None
    (tree / "curriculum/run/loop.py").write_text((tree / "curriculum/run/loop.py").read_text() + "\n# edit\n")
    edited = code_version.current(tree)
    assert edited.git_commit == clean.git_commit and edited.uncommitted_hash
    assert edited.source_hash != clean.source_hash
    (tree / "curriculum/new_module.py").write_text("X = 1\n")  # untracked files count too
    assert code_version.current(tree).uncommitted_hash != edited.uncommitted_hash


def test_resume_says_in_one_line_that_the_code_differs_and_continues_only_when_told(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(to_yaml(from_dict({})))
    code_version.pin(run_dir)
    record = json.loads((run_dir / "code_version.json").read_text())
    record["current"]["source_hash"] = "0" * 64  # the run ran with other code
    (run_dir / "code_version.json").write_text(json.dumps(record))

    assert main(["resume", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"error: {run_dir} ran with other code (curriculum ")
    assert "source 0000000000; now curriculum" in err[0] and "--allow-code-change" in err[0]

    now, before = code_version.check_unchanged(run_dir, allow_change=True)
    assert before.source_hash == "0" * 64 and now == code_version.current()
    with pytest.raises(code_version.CodeChangedError):  # allowing it once changes nothing recorded
        code_version.check_unchanged(run_dir, allow_change=False)
    code_version.pin(run_dir, now)  # what resume does before continuing
    assert code_version.check_unchanged(run_dir, allow_change=False) == (now, None)
    assert [e["source_hash"] for e in json.loads((run_dir / "code_version.json").read_text())["history"]] == [
        now.source_hash,
        now.source_hash,
    ]


def test_modules_imported_after_use_snapshot_come_from_the_run_s_copy(tmp_path, tree):
    """Editing the working tree during a run changes nothing the run imports later."""
    run_dir = tmp_path / "run"
    code_version.pin(run_dir, root=tree)
    (tree / "curriculum/run/ablate.py").write_text("raise RuntimeError('edited mid-run')\n")  # the user's edit
    script = (
        f"import sys; sys.path.insert(0, {str(tree)!r})\n"
        "import curriculum.rundir\n"
        "from curriculum.run import code_version\n"
        f"code_version.use_snapshot({str(run_dir)!r})\n"
        "import curriculum.run.ablate as a, curriculum.report.lineage as l\n"
        "print(a.__file__); print(l.__file__)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [
        str((run_dir / "code/curriculum/run/ablate.py").resolve()),
        str((run_dir / "code/curriculum/report/lineage.py").resolve()),
    ]
