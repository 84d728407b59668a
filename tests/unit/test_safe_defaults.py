"""Safe defaults: model output is never run as code, services stay local, telemetry is off."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from curriculum.config import RayConfig
from curriculum.verify import Verifier

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(ROOT / "curriculum").rglob("*.py"), *(ROOT / "agents").rglob("*.py")])
# Builtin eval/exec/compile (not `model.eval()`), shell commands, and unpickling of data.
DANGEROUS = re.compile(
    r"(?<![\w.])(eval|exec|compile|__import__)\s*\(|shell\s*=\s*True|pickle\.loads?\(|"
    r"os\.system\(|os\.popen\("
)


def test_no_eval_exec_or_shell_in_the_package():
    hits = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in SOURCES
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if DANGEROUS.search(line.split("#")[0])
    ]
    assert SOURCES and hits == []


@pytest.mark.parametrize(
    "completion",
    [
        "\\boxed{__import__('os').system('touch {marker}')}",
        "answer: __import__('os').system('touch {marker}')",
        "answer: exec(\"open('{marker}', 'w').write('x')\")",
        "$\\boxed{(lambda: open('{marker}', 'w'))()}$",
        "answer: ().__class__.__base__.__subclasses__()",
    ],
)
def test_code_in_a_completion_is_graded_false_and_never_runs(completion, tmp_path):
    marker = tmp_path / "ran"
    with Verifier() as verifier:
        for rule in ("auto", "answer_colon", "boxed"):
            assert verifier.grade(completion.replace("{marker}", str(marker)), "0", rule).correct is False
    assert not marker.exists()


def test_ray_mlflow_and_hugging_face_telemetry_are_off_by_default():
    names = ("RAY_USAGE_STATS_ENABLED", "MLFLOW_DISABLE_TELEMETRY", "HF_HUB_DISABLE_TELEMETRY")
    env = {k: v for k, v in os.environ.items() if k not in names}
    code = (
        "import os, agents.cluster, curriculum.report.tracking, huggingface_hub.constants as hf; "
        f"print(*[os.environ[n] for n in {names!r}], hf.HF_HUB_DISABLE_TELEMETRY)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    assert out.stdout.split() == ["0", "true", "1", "True"]


def test_local_ray_cluster_has_no_dashboard_and_asks_for_loopback(monkeypatch):
    import ray

    from agents import cluster

    seen = {}
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: seen.update(kwargs))
    cluster.start_ray(RayConfig())
    assert seen["include_dashboard"] is False
    assert seen["_node_ip_address"] == "127.0.0.1"


def test_mlflow_defaults_to_a_local_sqlite_file_not_a_server(tmp_path):
    from curriculum.config import TrackingConfig
    from curriculum.report.tracking import default_tracking_uri

    assert TrackingConfig().tracking_uri is None
    assert default_tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
