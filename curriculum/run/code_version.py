"""A run pinned to its code: which code it runs, recorded at launch, and a copy of it to run from.

Users edit the package while multi-day runs are live. So at launch a run records its code
version (package version, git commit, a hash of uncommitted changes, and a hash of the source
itself) in `code_version.json` and copies the source of its packages into `code/` of its run
directory. Its Ray actors import that copy (a Ray `runtime_env` with `py_modules`, see
`agents/cluster.py`), and so does the driver for every module it has not imported yet
(`use_snapshot`): editing the package during a run neither breaks nor silently changes it.
`curriculum resume` compares the code it is started with against the run's and continues with
other code only when told to (`--allow-code-change`), recording the change.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from curriculum.errors import CurriculumError
from curriculum.files import atomic_write_json, replace_dir_atomically
from curriculum.rundir import RunLayout

PACKAGES = ("curriculum", "agents")  # what a run imports of this project (pyproject's packages)


class CodeChangedError(CurriculumError):
    """A run asked to continue with code other than the code it ran with."""


@dataclass(frozen=True)
class CodeVersion:
    package_version: str
    source_hash: str  # sha256 of the packages' source files (relative path and content of each)
    git_commit: str | None = None  # None: not a git checkout
    uncommitted_hash: str | None = None  # sha256 of the uncommitted changes to the packages; None: none

    def describe(self) -> str:
        git = "no git" if self.git_commit is None else f"git {self.git_commit[:10]}"
        if self.uncommitted_hash:
            git += f" + uncommitted changes {self.uncommitted_hash[:10]}"
        return f"curriculum {self.package_version}, {git}, source {self.source_hash[:10]}"

    def tags(self) -> dict[str, str]:
        """MLflow tags (`code.*`)."""
        return {f"code.{key}": "" if value is None else str(value) for key, value in asdict(self).items()}


def source_root() -> Path:
    """The folder holding the packages this process imported."""
    package = sys.modules["curriculum"].__file__
    assert package is not None  # a regular package, imported from its folder
    return Path(package).resolve().parents[1]


def source_files(root: Path) -> list[Path]:
    """The packages' source files under `root`, relative to it, in a fixed order."""
    return sorted(
        path.relative_to(root)
        for package in PACKAGES
        for path in (root / package).rglob("*.py")
        if "__pycache__" not in path.parts
    )


def source_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for relative in source_files(root):
        digest.update(relative.as_posix().encode() + b"\0" + (root / relative).read_bytes() + b"\0")
    return digest.hexdigest()


def current(root: Path | None = None) -> CodeVersion:
    """The code version of the packages under `root` (default: the ones this process runs)."""
    from importlib.metadata import PackageNotFoundError, version

    root = root or source_root()
    try:
        package_version = version("curriculum")
    except PackageNotFoundError:
        package_version = "unknown"
    commit, uncommitted = _git_state(root)
    return CodeVersion(package_version, source_hash(root), commit, uncommitted)


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.decode("utf-8", "replace") if done.returncode == 0 else None


def _git_state(root: Path) -> tuple[str | None, str | None]:
    """(HEAD commit, hash of the uncommitted changes to the packages or None) of a git checkout."""
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return None, None
    diff = _git(root, "diff", "HEAD", "--binary", "--", *PACKAGES) or ""
    untracked = (_git(root, "ls-files", "--others", "--exclude-standard", "--", *PACKAGES) or "").split()
    if not diff and not untracked:
        return commit.strip(), None
    digest = hashlib.sha256(diff.encode())
    for name in sorted(untracked):
        path = root / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return commit.strip(), digest.hexdigest()


# ----------------------------------------------------------------------------- the run's record


def snapshot_dir(run_dir: Path) -> Path:
    return RunLayout(Path(run_dir)).code


def pin(run_dir: Path, version: CodeVersion | None = None, root: Path | None = None) -> CodeVersion:
    """Copy the packages' source into `run_dir/code` (replacing it atomically) and record `version`
    in code_version.json (`launched` the first time, `current` and `history` always)."""
    root = root or source_root()
    version = version or current(root)

    def write(tmp: Path) -> None:
        for relative in source_files(root):
            (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / relative, tmp / relative)

    replace_dir_atomically(snapshot_dir(run_dir), write)
    record_file = RunLayout(Path(run_dir)).code_version
    record: dict[str, Any] = json.loads(record_file.read_text()) if record_file.is_file() else {}
    entry = {**asdict(version), "at": datetime.now(UTC).isoformat(timespec="seconds")}
    record.setdefault("launched", entry)
    record["current"] = entry
    record["history"] = [*record.get("history", []), entry]
    atomic_write_json(record_file, record)
    return version


def recorded(run_dir: Path) -> CodeVersion | None:
    """The code version the run last ran with (None: a run from before code versions were recorded)."""
    record_file = RunLayout(Path(run_dir)).code_version
    if not record_file.is_file():
        return None
    entry = dict(json.loads(record_file.read_text())["current"])
    entry.pop("at", None)
    return CodeVersion(**entry)


def check_unchanged(run_dir: Path, allow_change: bool) -> tuple[CodeVersion, CodeVersion | None]:
    """(the code this process runs, the run's when it differs): refuses other code unless `allow_change`."""
    now, then = current(), recorded(run_dir)
    if then is None or then.source_hash == now.source_hash:
        return now, None
    if not allow_change:
        raise CodeChangedError(
            f"{run_dir} ran with other code ({then.describe()}; now {now.describe()}): "
            "resume with --allow-code-change to continue it with this code"
        )
    return now, then


def use_snapshot(run_dir: Path) -> None:
    """Import every module of the packages not imported yet from the run's copy of the source.

    The modules this process has imported already came from the same source moments ago; the
    rest (most are imported inside functions, when first needed) would otherwise be read from
    the working tree whenever that is, edited or not.
    """
    code = snapshot_dir(run_dir).resolve()
    for name, module in list(sys.modules.items()):
        parts = name.split(".")
        if parts[0] in PACKAGES and hasattr(module, "__path__"):
            module.__path__ = [str(code.joinpath(*parts))]
