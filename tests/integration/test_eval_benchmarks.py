"""`curriculum eval` on every benchmark in ../shared/data/benchmarks with the tiny base model,
and on a run's policy (logged to the run's MLflow run)."""

import json
from pathlib import Path

import pytest

from curriculum.cli import main
from curriculum.config import load_config

ROOT = Path(__file__).resolve().parents[2]
DATA = (ROOT / "../shared/data/benchmarks").resolve()
BENCHMARKS = sorted(load_config(ROOT / "configs/benchmarks.yaml").datasets)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not DATA.is_dir(), reason=f"benchmark data not on this machine ({DATA})"),
]


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_benchmark_loads_and_grades(name, tiny_base_model, tmp_path, capsys):
    out = tmp_path / f"{name}.json"  # the toy model's context is 512 characters: longer problems are left out
    code = main(
        [
            "eval",
            str(tiny_base_model),
            "--dataset",
            name,
            "--limit",
            "3",
            "--max-new-tokens",
            "8",
            "--skip-oversized",
            "--out",
            str(out),
            "--json",
            f"data_root={DATA}",
        ]
    )
    assert code == 0, capsys.readouterr().err
    report = json.loads(out.read_text())
    assert report["dataset"]["rows"] == 3 and len(report["items"]) == 3
    assert 0.0 <= report["pass@1"] <= 1.0 and report["mean_tokens"] > 0
    assert report["settings"]["temperature"] == 0.0 and report["settings"]["chat_template"] is False
    for item in report["items"]:
        assert item["samples"] == 1 and len(item["completions"]) == 1 and item["reference"]
    if name == "math500":
        assert report["by_level"] and report["by_subject"]
    printed = json.loads(capsys.readouterr().out)
    assert printed["pass@1"] == report["pass@1"] and "items" not in printed


def test_pass_at_k_with_sampling(tiny_base_model, tmp_path):
    out = tmp_path / "gsm8k.json"
    assert (
        main(
            [
                "eval",
                str(tiny_base_model),
                "--dataset",
                "gsm8k",
                "--limit",
                "2",
                "--max-new-tokens",
                "8",
                "--skip-oversized",
                "--k",
                "2",
                "--samples",
                "3",
                "--temperature",
                "1.0",
                "--out",
                str(out),
                f"data_root={DATA}",
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    assert report["settings"]["samples"] == 3 and report["pass@2"] >= report["pass@1"]
    assert all(len(item["completions"]) == 3 for item in report["items"])


def test_a_user_file_with_a_field_mapping(tiny_base_model, tmp_path):
    data = tmp_path / "mine.jsonl"
    data.write_text(
        "\n".join(json.dumps({"prompt": f"{a}+{a}=?", "target": 2 * a, "grade": a % 2 + 1}) for a in range(4)) + "\n"
    )
    out = tmp_path / "mine.json"
    assert (
        main(
            [
                "eval",
                str(tiny_base_model),
                "--dataset",
                str(data),
                "--question-field",
                "prompt",
                "--answer-field",
                "target",
                "--level-field",
                "grade",
                "--max-new-tokens",
                "64",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    assert report["dataset"]["name"] == "mine" and set(report["by_level"]) == {"1", "2"}


def test_a_run_policy_is_evaluated_and_logged_to_mlflow(tiny_run_dir):
    from mlflow.tracking import MlflowClient

    assert (
        main(
            [
                "eval",
                str(tiny_run_dir),
                "--dataset",
                "gsm8k",
                "--limit",
                "2",
                "--max-new-tokens",
                "8",
                "--skip-oversized",
                f"data_root={DATA}",
            ]
        )
        == 0
    )
    report = json.loads((tiny_run_dir / "eval/v0002/gsm8k-limit2.json").read_text())
    assert report["model"]["policy_version"] == 2 and report["model"]["adapter"].endswith("policy_v0002")
    tracking = json.loads((tiny_run_dir / "mlflow.json").read_text())
    client = MlflowClient(tracking_uri=tracking["tracking_uri"])
    history = client.get_metric_history(tracking["run_id"], "bench/gsm8k/pass_at_1")
    assert [(m.step, m.value) for m in history] == [(2, report["pass@1"])]
    assert [a.path for a in client.list_artifacts(tracking["run_id"], "eval")] == ["eval/gsm8k-limit2.json"]
