"""Run directories: `runs/<experiment>/<run>/` holding everything one run produced; the one module
that knows their layout (`RunLayout`).

The rule that lets a run span several nodes without a shared filesystem: ONLY THE DRIVER'S NODE
READS OR WRITES THE RUN DIRECTORY. The driver (the `curriculum` process) writes the config, the
checkpoints, their pointer and the results (MLflow's records too, by default next to the run
directories); the store actor, which writes store.duckdb and the Parquet snapshots, is pinned to
the driver's node (agents/cluster.py). The other roles run wherever their GPUs are and never see
it: a checkpoint travels as bytes through Ray's object store (`PolicyRef` / `FolderFiles`): the
Learner's `publish` and the Generator's `train` answer with their checkpoint's files, the driver
writes them here, and a restore sends them back. Files a role needs for itself (a Solver's copy
of an adapter for vLLM, TRL's output_dir, a served Teacher's log) go to a folder on its own node
(`node_scratch`). The roles read the model at `model.path` (made absolute by the driver), which
must exist on every node that runs one, and each role checks that when it is built
(agents/roles.py); the data under `data_root` is read by the driver only. Why not pin the
Learner to the driver's node instead: the driver's node is often a CPU head node, and the Learner
needs the GPUs.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from curriculum.config import Config, load_config, to_yaml
from curriculum.errors import CurriculumError
from curriculum.files import atomic_write_text

CONFIG_FILE = "config.yaml"


def policy_dir_name(version: int) -> str:
    """The folder name of published policy `version` (in a run's checkpoints/, or a Solver's copies)."""
    return f"policy_v{version:04d}"


@dataclass(frozen=True)
class RunLayout:
    """Where each file of a run directory lives:

    config.yaml                  the resolved config            store.duckdb   the store (one writer)
    code/ code_version.json      the run's copy of its code     mlflow.json    its MLflow run
    checkpoints/policy_vNNNN/    published policies: adapters (checkpoint.keep_last, keep_every), the
                                 newest with its optimizer state
    checkpoints/LATEST.json      the last completed round's pointer
    checkpoints/generator/vNNNN/ the Generator's checkpoints (the newest two)
    snapshots/<table>/from_round=NNNN/  each round's new rows of the store, in Parquet (manifest.json)
    prompts/                     the LLM workflows' prompts (sent to the Teacher as bytes)
    eval/vNNNN/                  `curriculum eval` results        logs/   results.json (the final tables)
    """

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def store(self) -> Path:
        return self.root / "store.duckdb"

    @property
    def results(self) -> Path:
        return self.root / "results.json"

    @property
    def mlflow(self) -> Path:
        return self.root / "mlflow.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def policy(self, version: int) -> Path:
        """Where policy `version` is published (version 0, the base model, is never written)."""
        return self.checkpoints / policy_dir_name(version)

    def policies(self) -> list[Path]:
        """The published policy folders there are, oldest first."""
        return sorted(self.checkpoints.glob("policy_v[0-9][0-9][0-9][0-9]"))

    @property
    def latest(self) -> Path:
        return self.checkpoints / "LATEST.json"

    @property
    def generator(self) -> Path:
        return self.checkpoints / "generator"

    def generator_version(self, version: int) -> Path:
        return self.generator / f"v{version:04d}"

    def generator_versions(self) -> list[Path]:
        """The Generator's checkpoint folders there are, oldest first."""
        return sorted(self.generator.glob("v[0-9][0-9][0-9][0-9]"))

    @property
    def snapshots(self) -> Path:
        """The store's Parquet snapshots, one file per table per round (store/snapshots.py)."""
        return self.root / "snapshots"

    @property
    def code(self) -> Path:
        """The run's copy of the source it runs (run/code_version.py)."""
        return self.root / "code"

    @property
    def code_version(self) -> Path:
        return self.root / "code_version.json"

    @property
    def prompts(self) -> Path:
        return self.root / "prompts"

    def evaluation(self, version: int) -> Path:
        return self.root / "eval" / f"v{version:04d}"


SCRATCH_OWNER = ".owner.lock"  # locked by the process a scratch folder belongs to, for its whole life
_held_locks: list[IO[str]] = []


def node_scratch(name: str) -> Path:
    """A fresh folder on this node for a role's own files (never the run directory: see above),
    removed when the process exits, or, when it dies without exiting (Ray kills the actors when a
    run ends), by the next `node_scratch` on the node (`remove_abandoned_scratch`)."""
    remove_abandoned_scratch()
    folder = Path(tempfile.mkdtemp(prefix=f"curriculum-{name}-"))
    lock = open(folder / SCRATCH_OWNER, "w")  # noqa: SIM115 - held open until the process ends
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    _held_locks.append(lock)
    atexit.register(shutil.rmtree, folder, True)
    return folder


def remove_abandoned_scratch() -> list[Path]:
    """Remove the scratch folders on this node whose process is gone: the kernel releases a dead
    process's lock, whatever its PID namespace, so a lock this call can take means no owner."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob("curriculum-*"):
        try:
            with open(folder / SCRATCH_OWNER) as owner:
                fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # no lock file (not a scratch folder, or one being made) or a live owner
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


class RunDirError(CurriculumError):
    """The run directory cannot be used as asked (exists, not writable, ...)."""


def run_dir_for(config: Config, run_dir: str | Path | None = None) -> Path:
    """`run_dir` if given, else runs_dir/<experiment>/<run_name or a timestamp>."""
    if run_dir is not None:
        return Path(run_dir)
    name = config.experiment.run_name or datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(config.experiment.runs_dir) / config.experiment.name / name


def is_run_dir(path: str | Path) -> bool:
    return RunLayout(Path(path)).config.is_file()


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
        layout = RunLayout(run_dir)
        layout.logs.mkdir(parents=True, exist_ok=True)
        atomic_write_text(layout.config, to_yaml(config))
    except OSError as exc:
        raise RunDirError(f"cannot write run directory {run_dir}: {exc.strerror or exc}") from None
    return run_dir


def open_run_dir(run_dir: str | Path) -> Config:
    """The config of an existing run directory (for resume), or a one-line error saying why not."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"run directory not found: {run_dir}")
    if not is_run_dir(run_dir):
        raise RunDirError(f"{run_dir} is not a run directory (no {CONFIG_FILE}); start one with `curriculum run`")
    if not os.access(run_dir, os.W_OK):
        raise RunDirError(f"run directory {run_dir} is not writable; fix its permissions to resume it")
    return load_config(RunLayout(run_dir).config)
