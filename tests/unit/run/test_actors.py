"""What the driver sends the role actors holds no relative path and no path into the run directory."""

from __future__ import annotations

from pathlib import Path

from curriculum.config import from_dict
from curriculum.run.actors import _role_factories, with_absolute_paths


def test_relative_paths_are_made_absolute_on_the_driver(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "qwen").mkdir(parents=True)
    config = from_dict({"model": {"kind": "hf", "path": "models/qwen"}, "data_root": "data"})
    absolute = with_absolute_paths(config)
    assert absolute.model.path == str(tmp_path / "models" / "qwen")
    assert absolute.data_root == str(tmp_path / "data")
    hub = with_absolute_paths(from_dict({"model": {"kind": "hf", "path": "Qwen/Qwen2.5-0.5B"}}))
    assert hub.model.path == "Qwen/Qwen2.5-0.5B"  # not a folder here: a hub id


def test_only_the_store_is_given_a_path_in_the_run_directory(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "prompts").mkdir(parents=True)
    (run_dir / "prompts" / "diagnose.md").write_text("diagnose {problem}")
    config = from_dict({"generator": {"enabled": True}})
    made = _role_factories(config, run_dir, "/models/base")
    assert made["store"].args == (str(run_dir / "store.duckdb"),)
    others = [*made["solvers"], made["teacher"], made["learner"], made["generator"]]
    for factory in others:
        for arg in [*factory.args, *factory.keywords.values()]:
            assert not (isinstance(arg, str | Path) and str(arg).startswith(str(run_dir))), (factory, arg)
    assert made["teacher"].args[1].files == {"diagnose.md": b"diagnose {problem}"}  # the prompts, as bytes
