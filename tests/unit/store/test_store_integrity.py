"""The store and run directory under crashes and a full disk: always readable and consistent,
never half-written, and a one-line error that says what to do."""

from __future__ import annotations

import errno
import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from curriculum import cli
from curriculum.config import from_dict
from curriculum.files import atomic_write_json
from curriculum.records import Problem
from curriculum.rundir import RunDirError, create_run_dir
from curriculum.store import Store, StoreError

ROOT = Path(__file__).resolve().parents[3]
BATCH = 500

WRITER = textwrap.dedent(
    """
    import sys
    from curriculum.records import Problem
    from curriculum.store import Store
    store = Store(sys.argv[1])
    for j in range(10**6):
        store.append([Problem(question=f"{j} {i} " + "pad " * 50, answer="1", source="seed") for i in range(BATCH)])
        print(j + 1, flush=True)
""".replace("BATCH", str(BATCH))
)


def test_a_writer_killed_mid_transaction_leaves_whole_batches_only(tmp_path):
    path = tmp_path / "store.duckdb"
    with Store(path) as store:  # create the schema first, so the kill lands in appends
        store.append([Problem(question="first", answer="1", source="seed")])
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    reported = 0
    for line in child.stdout:  # let a few batches commit, then kill it inside the next one
        reported = int(line)
        if reported >= 3:
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()
    with Store(path) as store:
        count = store.counts()["problems"]
        assert (count - 1) % BATCH == 0 and count - 1 >= reported * BATCH  # no partial batch, none lost
        distinct = store.con.execute("SELECT count(DISTINCT id) FROM problems").fetchone()[0]
        assert distinct == count
        assert store.append([Problem(question="after the crash", answer="1", source="seed")]) == 1


FULL_DISK = textwrap.dedent("""
    import os, resource, signal, sys
    from curriculum.records import Problem
    from curriculum.store import Store, StoreError
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    path = sys.argv[1]
    limit = os.path.getsize(path) + 64 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    store = Store(path)
    try:
        for j in range(1000):
            store.append([Problem(question=f"{j} {i} " + "x" * 1000, answer="1", source="seed") for i in range(100)])
            if sys.argv[2] == "checkpoint":
                store.checkpoint()
    except StoreError as exc:
        print(exc)
""")


@pytest.mark.parametrize("failing", ["append", "checkpoint"])
def test_a_full_disk_gives_one_clear_line_and_a_consistent_store(tmp_path, failing):
    path = tmp_path / "store.duckdb"
    with Store(path) as store:
        store.append([Problem(question="first", answer="1", source="seed")])
    result = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(path), failing], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    message = result.stdout.strip()
    assert message.count("\n") == 0, result.stderr[-2000:]
    assert f"{failing} " in message and "File too large" in message and "the disk is full" in message
    with Store(path) as store:
        assert (store.counts()["problems"] - 1) % 100 == 0


def test_atomic_write_that_fails_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "LATEST.json"
    atomic_write_json(target, {"round": 1})

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("os.fsync", full)
    with pytest.raises(OSError):
        atomic_write_json(target, {"round": 2})
    assert json.loads(target.read_text()) == {"round": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["LATEST.json"]


def test_cli_reports_a_full_disk_or_a_permission_error_in_one_line(monkeypatch, capsys):
    import curriculum.run.runner

    def run(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "runs/tiny/x/store.duckdb.wal")

    monkeypatch.setattr(curriculum.run.runner, "resume_experiment", run)
    assert cli.main(["resume", "runs/tiny/x"]) == cli.EXIT_ENVIRONMENT
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: No space left on device (runs/tiny/x/store.duckdb.wal): free space or fix permissions, "
        "then `curriculum resume RUN_DIR` continues after the last completed stage"
    ]


def test_run_directory_that_cannot_be_created_is_a_clear_error(tmp_path):
    blocker = tmp_path / "runs"
    blocker.write_text("a file where the runs folder should be")
    config = from_dict({"experiment": {"runs_dir": str(blocker), "run_name": "x"}})
    with pytest.raises(RunDirError, match=r"cannot write run directory .*runs/tiny/x: Not a directory"):
        create_run_dir(config)


def test_store_in_a_folder_that_cannot_be_made_is_a_store_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises((StoreError, OSError)):
        Store(blocker / "store.duckdb")
