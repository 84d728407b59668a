"""Scratch folders of roles on their node (curriculum/rundir.py `node_scratch`): removed when their
process exits, and by the next role on the node when it died without exiting."""

import os
import subprocess
import sys
import tempfile

from curriculum.rundir import node_scratch, remove_abandoned_scratch

MAKE_SCRATCH = "from curriculum.rundir import node_scratch; import os, sys; print(node_scratch('solver-0'), flush=True)"


def test_a_dead_roles_scratch_is_removed_and_a_live_ones_is_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    live = subprocess.Popen(
        [sys.executable, "-c", MAKE_SCRATCH + "; sys.stdin.read()"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        kept = tmp_path / os.path.basename(live.stdout.readline().strip())
        # killed: exits without running atexit, as an actor Ray kills does
        killed = subprocess.run(
            [sys.executable, "-c", MAKE_SCRATCH + "; os._exit(0)"], env=env, capture_output=True, text=True, check=True
        )
        abandoned = tmp_path / os.path.basename(killed.stdout.strip())
        (tmp_path / "curriculum-fingerprint-x").mkdir()  # not a role's scratch: no owner lock
        assert abandoned.is_dir() and kept.is_dir()

        mine = node_scratch("learner")  # a new role on the node clears what dead ones left

        assert not abandoned.exists()
        assert kept.is_dir() and mine.is_dir() and (tmp_path / "curriculum-fingerprint-x").is_dir()
        assert remove_abandoned_scratch() == []  # this process's own folder is in use too
    finally:
        live.communicate("")
    assert not kept.exists()  # removed by its own process on a normal exit
