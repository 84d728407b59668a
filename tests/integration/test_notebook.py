"""The curriculum notebook runs top to bottom against a run made by the test suite, and the
inspect and lineage commands read the same run."""

import json
from pathlib import Path

import nbformat
import pytest

from curriculum.cli import main

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "inspect_curriculum.ipynb"

pytestmark = pytest.mark.integration


def test_notebook_is_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert code[0].source.startswith("RUN_DIR = ") and "AS_OF = None" in code[0].source  # the settings, at the top


def test_notebook_executes_against_a_run(tiny_run_dir):
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    first = next(cell for cell in notebook.cells if cell.cell_type == "code")
    first.source = f"RUN_DIR = {str(tiny_run_dir)!r}\nAS_OF = 1"  # the run as of its first round
    # Any cell error raises CellExecutionError and fails the test.
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()
    images = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    assert len(images) == 5  # accuracy, solve rates, sources, knobs, lineage


def test_inspect_and_lineage_read_the_run(tiny_run_dir, capsys):
    assert main(["inspect", str(tiny_run_dir), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["acceptance"]) >= {"teacher", "generator"}
    teacher = summary["acceptance"]["teacher"]
    assert teacher["accepted"] > 0 and teacher["accepted"] + teacher["rejected"] > 0
    assert sum(summary["band"]["counts"].values()) == summary["store"]["problems"]
    assert all(r["attempted_by_level"] for r in summary["rounds"])
    assert main(["inspect", str(tiny_run_dir)]) == 0
    assert "learning band now" in capsys.readouterr().out

    from curriculum.report.summary import open_snapshot

    con, _ = open_snapshot(tiny_run_dir)
    child = con.execute("SELECT id FROM problems WHERE source = 'teacher' ORDER BY round_created DESC, id").fetchone()[
        0
    ]
    con.close()
    assert main(["lineage", str(tiny_run_dir), child, "--json"]) == 0
    lineage = json.loads(capsys.readouterr().out)
    assert lineage["problem"]["id"] == child and lineage["root_source"] == "seed"
