"""Run directories: `runs/<experiment>/<run>/` holding everything one run produced.

Layout: config.yaml (resolved), store.duckdb, snapshots/round_NNNN/*.parquet,
checkpoints/, logs/, results.json.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from curriculum.config import Config, to_yaml
from curriculum.errors import CurriculumError
from curriculum.files import atomic_write_text

CONFIG_FILE = "config.yaml"


class RunDirError(CurriculumError):
    """The run directory cannot be used as asked (exists, not writable, ...)."""


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
        hint = f"resume it with `curriculum resume {run_dir}`" if is_run_dir(run_dir) else "it is not a run directory"
        raise RunDirError(
            f"run directory {run_dir} already exists ({hint}); or pick another experiment.run_name / --run-dir"
        )


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
