"""Files that are complete or absent: atomic writes of a file or a whole folder (fsynced renames).

Used by everything that writes checkpoints, snapshots and run records, so a crash at any
moment leaves the old or the new version, never half of one. `FolderFiles` carries a folder's
files to another machine.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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


@dataclass(frozen=True)
class FolderFiles:
    """Some files of a folder, held as bytes: a checkpoint or a published policy adapter sent through
    Ray's object store to a process that may not see the disk it was written on (curriculum/rundir.py).

    `source` is the folder they were read from; a reader on the same machine finds the same
    bytes there (`found_at`) and loads that folder instead of writing a copy.
    """

    source: str
    files: dict[str, bytes]

    @classmethod
    def read(cls, folder: str | Path, names: Sequence[str] | None = None) -> FolderFiles:
        """`names` of `folder` (relative paths), or every file under it (None)."""
        folder = Path(folder)
        if names is None:
            if not folder.is_dir():
                raise FileNotFoundError(f"'{folder}' is not a folder")
            names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        missing = [name for name in names if not (folder / name).is_file()]
        if missing:
            raise FileNotFoundError(f"'{folder}' has no {', '.join(missing)}")
        return cls(str(folder), {name: (folder / name).read_bytes() for name in names})

    def only(self, names: Sequence[str]) -> FolderFiles:
        """These files and no others (those of `names` it holds)."""
        return FolderFiles(self.source, {name: data for name, data in self.files.items() if name in names})

    def found_at(self, folder: str | Path) -> bool:
        """Whether `folder` holds every one of these files with the same bytes."""
        folder = Path(folder)
        try:
            return all((folder / name).read_bytes() == data for name, data in self.files.items())
        except OSError:  # absent or unreadable here: another machine's folder
            return False

    def write(self, folder: str | Path) -> Path:
        """Write the files into `folder` (replaced atomically) and return it."""

        def write(tmp: Path) -> None:
            for name, data in self.files.items():
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp / name).write_bytes(data)

        return replace_dir_atomically(folder, write)
