"""Prompt files (configs/prompts/): named fields checked when the run starts, copies kept with the run."""

import pytest

from curriculum.config import load_config
from curriculum.roles.teacher import prompts
from curriculum.roles.teacher.llm import WRITE_FIELDS, load_prompts, prompt_paths
from curriculum.run.runner import preflight

ROOT = prompts.PACKAGE_CONFIGS.parent
LLM = ["teacher.kind=llm", "teacher.endpoint.base_url=http://127.0.0.1:8000/v1", "teacher.endpoint.model=m"]


def test_shipped_prompts_load_and_render_values_as_text():
    config = load_config(ROOT / "configs/tiny.yaml", LLM)
    loaded = load_prompts(config)
    assert loaded.write.fields() <= WRITE_FIELDS and {"harder", "easier", "sibling"} <= set(loaded.write.texts)
    messages = loaded.label.render(question="What is {x}? {{}}")
    assert messages == [
        ("user", "What is {x}? {{}}\n\nPlease reason step by step, and put your final answer within \\boxed{}.\n")
    ]
    assert loaded.label.template == f"label@{loaded.label.sha[:8]}"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("user: 'Solve {question} for {secret}'\n", r"uses \{secret\}, which this step does not fill"),
        ("user: 'a lone { brace'\n", "bad placeholder syntax"),
        ("system: only a system prompt\n", "must be a mapping with a `user` template"),
        ("user: 'x'\nextra: 1\n", r"unknown key\(s\) extra"),
        ("user: [unclosed\n", "cannot parse prompt"),
    ],
)
def test_a_bad_prompt_file_fails_preflight_in_one_line(tmp_path, text, expected):
    bad = tmp_path / "label.yaml"
    bad.write_text(text)
    config = load_config(ROOT / "configs/tiny.yaml", [*LLM, f"teacher.labels.prompt={bad}"])
    with pytest.raises(prompts.PromptError, match=expected) as caught:
        preflight(config)
    assert str(bad) in str(caught.value) and "\n" not in str(caught.value)
    missing = load_config(ROOT / "configs/tiny.yaml", [*LLM, f"teacher.labels.prompt={tmp_path / 'nope.yaml'}"])
    with pytest.raises(prompts.PromptError, match="prompt file not found"):
        preflight(missing)


def test_a_run_keeps_the_copies_it_started_with(tmp_path):
    config = load_config(ROOT / "configs/tiny.yaml", LLM)
    folder = prompts.save_prompts(prompt_paths(config), tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["label.yaml", "teacher_diagnose.yaml", "teacher_write.yaml"]
    (folder / "label.yaml").write_text("user: 'the run edited: {question}'\n")
    prompts.save_prompts(prompt_paths(config), tmp_path)  # on resume: not overwritten
    assert load_prompts(config, folder).label.user == "the run edited: {question}"
