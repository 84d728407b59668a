"""A problem whose prompt does not fit the model is refused when its data is read (file and
line named), or skipped and counted when asked, and generation never runs past the context:
a 5,000,000-character question costs milliseconds, not a hang or the machine's memory."""

from __future__ import annotations

import json
import time

import pytest
import torch
from toy_models import SMALL

from curriculum.cli import main
from curriculum.config import DatasetSpec, from_dict
from curriculum.engines.hf import HFEngine, PromptTooLongError
from curriculum.models import build_char_tokenizer, build_tiny_model
from curriculum.worlds.loading import DatasetError, load_problem_set
from curriculum.worlds.prompt_limit import PromptLimit

HUGE = "What is " + "1+" * 2_500_000 + "1?"  # 5,000,010 characters


@pytest.fixture(scope="module")
def tokenizer():
    return build_char_tokenizer()


def write_set(path, questions):
    path.write_text("".join(json.dumps({"question": q, "answer": "2"}) + "\n" for q in questions))
    return path


def test_a_huge_line_is_refused_with_its_file_and_line_at_once(tmp_path, tokenizer):
    data = write_set(tmp_path / "set.jsonl", ["1+1=?", HUGE, "2+0=?"])
    limit = PromptLimit.for_model(tokenizer, context=512, max_new_tokens=96, skip_hint="pass --skip-oversized")
    start = time.perf_counter()
    with pytest.raises(DatasetError) as error:
        load_problem_set(DatasetSpec(path=str(data)), tmp_path, "set", limit)
    assert time.perf_counter() - start < 10  # the bound needs no tokenizer pass over 5 MB
    message = str(error.value)
    assert message.startswith(f"{data}:2: the question is 5,000,010 characters")
    assert "context of 512 tokens less 96 new tokens" in message and "pass --skip-oversized" in message
    assert "\n" not in message


def test_skipped_lines_are_left_out_and_listed(tmp_path, tokenizer):
    just_over = "9" * 420 + "+1=?"  # under the character bound, over the token limit: counted exactly
    data = write_set(tmp_path / "set.jsonl", ["1+1=?", HUGE, just_over, "2+0=?"])
    limit = PromptLimit.for_model(tokenizer, context=512, max_new_tokens=96)
    skipped: list[str] = []
    problems = load_problem_set(DatasetSpec(path=str(data)), tmp_path, "set", limit, skipped)
    assert [p.question for p in problems] == ["1+1=?", "2+0=?"]
    assert [line.split(": ")[0] for line in skipped] == [f"{data}:2", f"{data}:3"]
    assert "the prompt is 42" in skipped[1] and "over the 416 allowed" in skipped[1]


def test_max_prompt_tokens_can_ask_for_less_than_the_context(tmp_path, tokenizer):
    data = write_set(tmp_path / "set.jsonl", ["1+1=?", "123456789+987654321=?"])
    limit = PromptLimit.for_model(tokenizer, context=512, max_new_tokens=96, max_prompt_tokens=12)
    with pytest.raises(
        DatasetError,
        match=r"set.jsonl:2: the prompt is \d+ tokens, over the 12 allowed "
        r"\(model.max_prompt_tokens=12\)",
    ):
        load_problem_set(DatasetSpec(path=str(data)), tmp_path, "set", limit)
    assert PromptLimit.for_model(tokenizer, context=None, max_new_tokens=96) is None


def test_generation_is_bounded_by_the_context(tokenizer):
    torch.manual_seed(0)
    engine = HFEngine(build_tiny_model(SMALL, tokenizer), tokenizer)  # max_position_embeddings=512
    assert engine.context == 512
    start = time.perf_counter()
    with pytest.raises(PromptTooLongError, match="prompt 1 is 5,000,010 characters"):
        engine.generate(["1+1=?\n", HUGE], max_new_tokens=8)
    assert time.perf_counter() - start < 10
    with pytest.raises(PromptTooLongError, match=r"prompt 0 is 500 tokens: with max_new_tokens=20 it exceeds"):
        engine.generate(["7" * 500], max_new_tokens=20)
    with pytest.raises(PromptTooLongError, match="leaves no room"):
        engine.generate(["1+1=?\n"], max_new_tokens=512)
    [[fits]] = engine.generate(["7" * 480], max_new_tokens=32, temperature=0)
    assert fits.num_tokens <= 32


def test_curriculum_eval_refuses_or_skips_the_line(tmp_path, capsys, base_path):
    data = write_set(tmp_path / "big.jsonl", ["1+1=?", HUGE])
    args = ["eval", str(base_path), "--dataset", str(data), "--max-new-tokens", "8", "--out", str(tmp_path / "r.json")]
    start = time.perf_counter()
    assert main(args) == 2
    assert time.perf_counter() - start < 30
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {data}:2: the question is 5,000,010 characters")
    assert "pass --skip-oversized" in err[0]
    assert not (tmp_path / "r.json").exists()

    assert main([*args, "--skip-oversized", "--json"]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["problems"] == 1 and report["skipped_oversized"]["count"] == 1
    assert report["skipped_oversized"]["lines"][0].startswith(f"{data}:2: ")


def test_a_run_refuses_an_oversized_seed_line_before_writing_anything(tmp_path, random_qwen):
    write_set(tmp_path / "seeds.jsonl", ["What is 1+1?", "What is " + "1+" * 8000 + "1?"])
    write_set(tmp_path / "heldout.jsonl", ["What is 2+2?"])
    config = from_dict(
        {
            "world": {"name": "dataset", "seed_sets": ["seeds"], "heldout_sets": ["heldout"]},
            "model": {"kind": "hf", "path": str(random_qwen)},
            "teacher": {"enabled": False},
            "generator": {"enabled": False},
            "data_root": str(tmp_path),
            "datasets": {"seeds": {"path": "seeds.jsonl"}, "heldout": {"path": "heldout.jsonl"}},
            "experiment": {"runs_dir": str(tmp_path / "runs")},
        }
    )
    from curriculum.run.runner import preflight

    with pytest.raises(
        DatasetError,
        match=r"seeds.jsonl:2: the prompt is [\d,]+ tokens, over the 3,904 allowed "
        r"\(the model's context of 4096 tokens less 192 new tokens\); shorten "
        r"it, or set world.skip_oversized=true",
    ):
        preflight(config)
    assert not (tmp_path / "runs").exists()
    preflight(config.model_copy(update={"world": config.world.model_copy(update={"skip_oversized": True})}))
