"""Imported at start-up by every Python process of the test's second Ray node (its raylet's PYTHONPATH
holds this folder): the driver's disk is not there. An audit hook refuses, and records, any file
access under CURRICULUM_TEST_HIDDEN (the folder holding the run directory and the driver's model
cache), as a node without a shared filesystem would fail it. Stat calls are not audited by Python;
an open, a listing, a folder made or removed, a rename or a chdir is."""

import os
import sys

_HIDDEN = os.environ.get("CURRICULUM_TEST_HIDDEN")
_LOG = os.environ.get("CURRICULUM_TEST_HIDDEN_LOG", "")
# The audited calls that read or change the filesystem, and which of their arguments are paths.
_EVENTS = {
    "open": (0,),
    "os.listdir": (0,),
    "os.scandir": (0,),
    "os.mkdir": (0,),
    "os.rmdir": (0,),
    "os.remove": (0,),
    "os.rename": (0, 1),
    "os.chdir": (0,),
    "os.truncate": (0,),
    "shutil.rmtree": (0,),
    "shutil.copyfile": (0, 1),
    "shutil.copytree": (0, 1),
    "shutil.move": (0, 1),
}


def _hidden(path: object) -> str | None:
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str):  # a file descriptor
        return None
    absolute = os.path.abspath(path)
    return absolute if absolute == _HIDDEN or absolute.startswith(_HIDDEN + os.sep) else None


def _hook(event: str, args: tuple) -> None:
    for index in _EVENTS.get(event, ()):
        if index < len(args):
            path = _hidden(args[index])
            if path is not None:
                with open(_LOG, "a") as log:
                    log.write(f"{os.getpid()} {event} {path}\n")
                raise PermissionError(f"{path} is on the driver's node, not this one ({event})")


if _HIDDEN:
    _HIDDEN = os.path.realpath(_HIDDEN)
    with open(_LOG + ".processes", "a") as processes:  # the test checks that the hook ran here
        processes.write(f"{os.getpid()} {' '.join(sys.argv)[:200]}\n")
    sys.addaudithook(_hook)
