"""Every kind of bad input, through the `curriculum` command: exit code 2, one line that names
what is wrong and where, and nothing written (no run directory, no store)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from curriculum import cli
from curriculum.config import from_dict, to_yaml
from curriculum.store import Store

ROOT = Path(__file__).resolve().parents[3]
TINY = str(ROOT / "configs/tiny.yaml")

# (case, extra arguments after `run TINY`, what the one line must contain)
CONFIG_CASES = [
    ("unknown key", ["solver.atempts=3"], "unknown config key 'solver.atempts' (did you mean 'solver.attempts'?)"),
    ("unknown section", ["solvr.attempts=3"], "unknown config key 'solvr'"),
    ("wrong type", ["solver.attempts=many"], "'solver.attempts' = 'many'"),
    ("zero attempts", ["solver.attempts=0"], "'solver.attempts' = 0"),
    ("band low above high", ["selection.band_low=0.875"], "selection.band_low=0.875 is above selection.band_high"),
    ("band edge off the 1/k grid", ["selection.band_low=0.3"], "not a multiple of 1/solver.attempts"),
    ("negative rounds", ["loop.rounds=-1"], "'loop.rounds' = -1"),
    ("override without =", ["loop.rounds"], "override 'loop.rounds' must look like key=value"),
    ("mapping over a list", ["world.families={add: 1}"], "override 'world.families={add: 1}' does not fit what"),
    (
        "model path missing",
        ["model.kind=hf", "model.path=/no/such/model"],
        "model path '/no/such/model' does not exist",
    ),
    ("hf model without a path", ["model.kind=hf"], "model.kind=hf needs model.path"),
    ("eval set not a dataset", ["decontamination.eval_sets=[nope]"], "'nope' is not a dataset"),
]

# Malformed evaluation data (read before the run starts, because decontamination uses it).
DATA_CASES = [
    ("bad JSON line", b'{"question": "1+1", "answer": "2"}\n{"question": oops}\n', "bad.jsonl:2: invalid JSON"),
    ("missing field", b'{"question": "1+1"}\n', "bad.jsonl:1: missing field 'answer'"),
    ("empty file", b"", "is empty"),
    ("JSON array", b'[{"question": "1+1", "answer": "2"}]\n', "bad.jsonl:1"),
    ("binary junk", bytes(range(256)) * 4, "bad.jsonl:1"),
    ("missing file", None, "dataset file not found"),
]


def run_cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    code = cli.main(argv)
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.fixture
def runs(tmp_path):
    return tmp_path / "runs"


def where(runs: Path) -> list[str]:
    return [f"experiment.runs_dir={runs}", "experiment.run_name=r"]


@pytest.mark.parametrize("case, args, expected", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_bad_config_is_one_line_exit_2_and_writes_nothing(case, args, expected, runs, capsys):
    code, err = run_cli(["run", TINY, *where(runs), *args], capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("error: ") and expected in err[0]
    assert not runs.exists()


@pytest.mark.parametrize("case, content, expected", DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_malformed_data_file_is_one_line_naming_file_and_line(case, content, expected, runs, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    if content is not None:
        (data / "bad.jsonl").write_bytes(content)
    args = [f"data_root={data}", "datasets.bad.path=bad.jsonl", "decontamination.eval_sets=[bad]"]
    code, err = run_cli(["run", TINY, *where(runs), *args], capsys)
    assert code == 2 and len(err) == 1, err
    assert expected in err[0]
    assert not runs.exists()


def test_missing_config_file(runs, capsys):
    code, err = run_cli(["run", str(runs / "nope.yaml")], capsys)
    assert (code, err) == (2, [f"error: config file not found: {runs / 'nope.yaml'}"])


def test_run_refuses_an_existing_run_directory(tmp_path, capsys):
    existing = tmp_path / "mine"
    existing.mkdir()
    (existing / "config.yaml").write_text("experiment:\n  seed: 1\n")
    code, err = run_cli(["run", TINY, "--run-dir", str(existing)], capsys)
    assert code == 2 and err == [
        f"error: run directory {existing} already exists (resume it with "
        f"`curriculum resume {existing}`); or pick another experiment.run_name / --run-dir"
    ]
    assert [p.name for p in existing.iterdir()] == ["config.yaml"]
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    code, err = run_cli(["run", TINY, "--run-dir", str(not_a_dir)], capsys)
    assert code == 2 and "it is not a run directory" in err[0]


def test_run_resume_refuses_a_changed_config(tmp_path, capsys):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(to_yaml(from_dict({"solver": {"attempts": 4}})))
    code, err = run_cli(["run", TINY, "--run-dir", str(run_dir), "--resume"], capsys)
    assert code == 2 and len(err) == 1 and "was started with another config (differs at " in err[0]


def make_run_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(to_yaml(from_dict({})))
    return path


@pytest.mark.parametrize("case", ["missing", "not a run", "bad config", "newer schema", "not a store"])
def test_resume_of_a_directory_it_cannot_continue(case, tmp_path, capsys):
    run_dir = tmp_path / "run"
    expected = {
        "missing": f"run directory not found: {run_dir}",
        "not a run": f"{run_dir} is not a run directory (no config.yaml)",
        "bad config": "unknown config key 'solver.atempts'",
        "newer schema": "schema version 99 is newer than this code supports",
        "not a store": "cannot open read-write",
    }[case]
    if case == "not a run":
        run_dir.mkdir()
    elif case == "bad config":
        make_run_dir(run_dir)
        (run_dir / "config.yaml").write_text("solver:\n  atempts: 3\n")
    elif case == "newer schema":
        make_run_dir(run_dir)
        Store(run_dir / "store.duckdb").close()
        with duckdb.connect(str(run_dir / "store.duckdb")) as con:
            con.execute("INSERT INTO schema_version (version, description) VALUES (99, 'from the future')")
    elif case == "not a store":
        make_run_dir(run_dir)
        (run_dir / "store.duckdb").write_bytes(b"not a database" * 100)
    before = sorted(p.name for p in run_dir.iterdir()) if run_dir.exists() else None
    code, err = run_cli(["resume", str(run_dir)], capsys)
    assert code == 2 and len(err) == 1, err
    assert expected in err[0]
    after = sorted(p.name for p in run_dir.iterdir()) if run_dir.exists() else None
    assert after == before  # nothing written


def test_an_older_store_schema_is_migrated_on_resume(tmp_path, monkeypatch):
    """The other half of 'incompatible schema': older stores are brought up to date, not refused."""
    from curriculum.run import runner
    from curriculum.store import schema

    run_dir = make_run_dir(tmp_path / "run")
    with Store(run_dir / "store.duckdb"):
        pass
    newer = schema.Migration(
        schema.supported_schema_version() + 1,
        "a test column",
        ("ALTER TABLE problems ADD COLUMN note VARCHAR DEFAULT ''",),
    )
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, newer))
    runner._check_store(run_dir)
    with Store(run_dir / "store.duckdb", read_only=True) as s:
        assert s.schema_version == newer.version


def test_json_config_error_is_also_one_line(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps({"loop": {"rounds": "three"}}))
    code, err = run_cli(["run", str(path)], capsys)
    assert code == 2 and len(err) == 1 and "'loop.rounds' = 'three'" in err[0]
