"""bench/gpu_check.py runs its four phases at toy sizes on CPU, in a process where Ray, DuckDB,
MLflow, vLLM, LangGraph and math-verify cannot be imported (the GPU machine has none of them)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ABSENT = ("ray", "duckdb", "mlflow", "vllm", "langgraph", "langchain_core", "langchain_openai", "math_verify")
# A None entry in sys.modules makes `import x` fail and importlib.util.find_spec(x) say it is not there.
RUN_WITHOUT = (
    f"import sys, runpy; sys.modules.update(dict.fromkeys({ABSENT!r})); "
    "sys.argv = ['bench/gpu_check.py', '--cpu', '--tiny']; runpy.run_path('bench/gpu_check.py', run_name='__main__')"
)


def test_gpu_check_prints_a_result_line_per_phase_on_cpu_without_the_cluster_libraries():
    done = subprocess.run([sys.executable, "-c", RUN_WITHOUT], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    results = {
        m.group(1): dict(kv.split("=", 1) for kv in m.group(2).split())
        for m in re.finditer(r"^RESULT phase=(\w+) (.*)$", done.stdout, re.MULTILINE)
    }
    assert list(results) == ["rollout", "grpo", "dpo", "async", "total"]
    assert float(results["rollout"]["hf_tokens_per_s"]) > 0 and int(results["rollout"]["new_tokens"]) > 0
    for phase in ("grpo", "dpo"):
        assert int(results[phase]["steps"]) == 2 and float(results[phase]["step_s"]) > 0
        assert results[phase]["device"] == "cpu" and "peak_gpu_mib" in results[phase]
    assert "engine: HF (vLLM does not travel here)" in done.stdout
    assert float(results["async"]["sequential_s"]) > 0 and float(results["async"]["overlapped_s"]) > 0
