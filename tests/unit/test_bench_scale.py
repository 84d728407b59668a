"""bench/scale.py at tiny sizes: it fills a store, times each step through a store actor at round 10
and at its last round, and prints its RESULT and GOALS lines (the numbers themselves are not checked:
at these sizes fixed costs dominate)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--rounds", "12", "--problems", "2000", "--attempts", "20000", "--compact-every", "4", "--repeats", "1"]


def run_scale(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "bench/scale.py", *args, "--dir", str(tmp_path)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_scale_prints_every_timing_at_round_10_and_the_last_round(tmp_path):
    done = run_scale(*TINY, tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    result = dict(kv.split("=", 1) for kv in re.search(r"^RESULT (.*)$", done.stdout, re.MULTILINE).group(1).split())
    assert int(result["attempts"]) > 19_000  # every round's attempts (a few problems drawn twice in a round)
    for step in ("select", "snapshot", "inspect", "resume"):
        for round in (10, 12):
            assert float(result[f"{step}_ms_round_{round}"]) > 0, step
    for key in ("band_query_ms", "disk_growth_per_round_mb", "driver_peak_rss_mib"):
        assert float(result[key]) > 0, key
    goals = dict(kv.split("=") for kv in re.search(r"^GOALS (.*)$", done.stdout, re.MULTILINE).group(1).split())
    assert set(goals) >= {"select_12_within_2x", "snapshot_late_within_2x", "band_query_le_100ms", "driver_memory_flat"}
    assert set(goals.values()) <= {"met", "MISSED"}
    # What the timed calls read: the whole selection, and each finished round's last stage record.
    assert re.search(r"select: 208 problems \(of 208\)", done.stdout)
    assert re.search(r"resume: 12 finished rounds, 1 states read back", done.stdout)
    assert not list(tmp_path.iterdir())  # the run directory is removed


def test_scale_refuses_a_fill_the_disk_cannot_hold_in_one_line(tmp_path):
    done = run_scale("--attempts", str(10**15), tmp_path=tmp_path)
    assert done.returncode != 0
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "--attempts 1000000000000000" in done.stderr and "are free" in done.stderr
