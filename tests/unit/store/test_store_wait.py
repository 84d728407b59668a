"""A resume right after a crash finds the dead run's store actor still holding the file for a few
seconds: the run waits for the lock (bounded) instead of failing, and a file held for good is
still the one-line store error."""

import subprocess
import sys
import textwrap
import time

import pytest

from curriculum.run.runner import _check_store
from curriculum.store import Store, StoreError


def hold(path, seconds: float) -> subprocess.Popen:
    """Another process holding the store read-write for `seconds` (DuckDB locks per process)."""
    code = textwrap.dedent(f"""
        import sys, time, duckdb
        con = duckdb.connect({str(path)!r})
        print("held", flush=True)
        time.sleep({seconds})
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_store_released_within_the_wait_is_opened(tmp_path, capsys):
    Store(tmp_path / "store.duckdb").close()
    holder = hold(tmp_path / "store.duckdb", 2)
    start = time.monotonic()
    _check_store(tmp_path, wait_s=30)
    assert 1 <= time.monotonic() - start < 30
    assert "is still held by another process" in capsys.readouterr().out
    holder.wait()


def test_a_store_held_past_the_wait_is_the_one_line_error(tmp_path):
    Store(tmp_path / "store.duckdb").close()
    holder = hold(tmp_path / "store.duckdb", 30)
    try:
        with pytest.raises(StoreError, match="cannot open read-write: .*Conflicting lock"):
            _check_store(tmp_path, wait_s=1)
    finally:
        holder.kill()
