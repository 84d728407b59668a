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


CONFIG_FILE = "config.yaml"


class RunDirError(CurriculumError):
    """The run directory cannot be used as asked (exists, not writable, ...)."""


def fsync_dir(directory: Path) -> None:
    """Make a rename inside `directory` durable (the new name survives a power cut)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some filesystems do not open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file in the same folder, fsync, then rename: readers never see half a file."""
    path = Path(path)
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
    fsync_dir(path.parent)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def replace_dir_atomically(directory: str | Path, write: Callable[[Path], None]) -> Path:
    """Fill a temporary sibling folder with `write(tmp)`, then swap it in with two renames.

    A crash leaves either the old or the new folder complete, never a half-written one (or,
    between the two renames, the old one under a hidden name: its stage is then redone). The
    hidden leftovers of a crashed writer are removed first.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".{directory.name}.tmp-{os.getpid()}"
    old = directory.parent / f".{directory.name}.old-{os.getpid()}"
    for pattern in (f".{directory.name}.tmp-*", f".{directory.name}.old-*"):
        for leftover in directory.parent.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)
    try:
        tmp.mkdir()
        write(tmp)
        _fsync_tree(tmp)
        if directory.exists():
            os.replace(directory, old)
        os.replace(tmp, directory)
        fsync_dir(directory.parent)
    finally:
        for leftover in (tmp, old):
            if leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)
    return directory


def _fsync_tree(folder: Path) -> None:
    """fsync every file under `folder`, so a renamed-in checkpoint is on disk, not only in cache."""
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


def run_dir_for(config: Config, run_dir: str | Path | None = None) -> Path:
    """`run_dir` if given, else runs_dir/<experiment>/<run_name or a timestamp>."""
    if run_dir is not None:
        return Path(run_dir)
    name = config.experiment.run_name or datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(config.experiment.runs_dir) / config.experiment.name / name


def is_run_dir(path: str | Path) -> bool:
    return (Path(path) / CONFIG_FILE).is_file()


def check_new_run_dir(run_dir: Path) -> None:
    """Refuse a directory that holds anything: a run is never silently overwritten."""
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        hint = (f"resume it with `curriculum resume {run_dir}`" if is_run_dir(run_dir)
                else "it is not a run directory")
        raise RunDirError(f"run directory {run_dir} already exists ({hint}); "
                          "or pick another experiment.run_name / --run-dir")


def create_run_dir(config: Config, run_dir: str | Path | None = None) -> Path:
    """Make a fresh run directory and write the resolved config into it.

    Refuses an existing non-empty directory: a run is never silently overwritten.
    """
    run_dir = run_dir_for(config, run_dir)
    check_new_run_dir(run_dir)
    try:
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / CONFIG_FILE, to_yaml(config))
    except OSError as exc:
        raise RunDirError(f"cannot write run directory {run_dir}: {exc.strerror or exc}") from None
    return run_dir


def open_run_dir(run_dir: str | Path) -> Config:
    """The config of an existing run directory (for resume), or a one-line error saying why not."""
    from curriculum.config import load_config

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"run directory not found: {run_dir}")
    if not is_run_dir(run_dir):
        raise RunDirError(f"{run_dir} is not a run directory (no {CONFIG_FILE}); start one with `curriculum run`")
    if not os.access(run_dir, os.W_OK):
        raise RunDirError(f"run directory {run_dir} is not writable; fix its permissions to resume it")
    return load_config(run_dir / CONFIG_FILE)
