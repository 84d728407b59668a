"""Run directories: `runs/<experiment>/<run>/` holding everything one run produced.

Layout: config.yaml (resolved), store.duckdb, snapshots/round_NNNN/*.parquet,
checkpoints/, logs/, results.json.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from curriculum.config import Config, to_yaml
from curriculum.errors import CurriculumError


class RunDirError(CurriculumError):
    """The run directory cannot be used as asked (exists, not writable, ...)."""


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file in the same folder, fsync, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def replace_dir_atomically(directory: str | Path, write: Callable[[Path], None]) -> Path:
    """Fill a temporary sibling folder with `write(tmp)`, then swap it in with two renames.

    A crash leaves either the old or the new folder complete, never a half-written one.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".{directory.name}.tmp-{os.getpid()}"
    old = directory.parent / f".{directory.name}.old-{os.getpid()}"
    for leftover in (tmp, old):
        if leftover.exists():
            shutil.rmtree(leftover)
    try:
        tmp.mkdir()
        write(tmp)
        if directory.exists():
            os.replace(directory, old)
        os.replace(tmp, directory)
    finally:
        for leftover in (tmp, old):
            if leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)
    return directory


def run_dir_for(config: Config) -> Path:
    name = config.experiment.run_name or datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(config.experiment.runs_dir) / config.experiment.name / name


def create_run_dir(config: Config) -> Path:
    """Make a fresh run directory and write the resolved config into it.

    Refuses an existing non-empty directory: a run is never silently overwritten.
    """
    run_dir = run_dir_for(config)
    if run_dir.exists() and any(run_dir.iterdir()):
        raise RunDirError(
            f"run directory {run_dir} already exists; pick another experiment.run_name or delete it"
        )
    try:
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.yaml", to_yaml(config))
    except OSError as exc:
        raise RunDirError(f"cannot write run directory {run_dir}: {exc.strerror or exc}") from None
    return run_dir
