"""Sections that differ by kind are discriminated unions (`world.name`, `teacher.kind`, `solver.engine`):
a key of another variant is refused in one line that says what to remove, and a run directory saved
before the unions (every key of the old one-class sections written out) still loads."""

from pathlib import Path

import pytest
import yaml

from curriculum.config import (
    ArithmeticWorldConfig,
    ConfigError,
    DatasetWorldConfig,
    LLMTeacherConfig,
    SymbolicTeacherConfig,
    VLLMConfig,
    from_dict,
    load_config,
    to_yaml,
)

ROOT = Path(__file__).resolve().parents[3]

# What the last version before the unions wrote for these sections: every key of its one class.
OLD_WORLD_KEYS = {
    "families": ["add", "sub", "mul", "sum", "linear", "word"],
    "max_level": 5,
    "heldout_per_level": 20,
    "seed_sets": [],
    "heldout_sets": [],
    "heldout_size": {},
    "skip_oversized": False,
    "level_edges": [0.75, 0.5, 0.25, 0.125],
}
OLD_TEACHER_KEYS = {
    "endpoint": LLMTeacherConfig().endpoint.model_dump(mode="json"),
    "serve": None,
    "labels": LLMTeacherConfig().labels.model_dump(mode="json"),
    "prompts": LLMTeacherConfig().prompts.model_dump(mode="json"),
    "attempts_shown": 4,
}


def old_dump(recipe: str) -> dict:
    """A recipe's resolved config as the version before the unions saved it into a run directory."""
    data = yaml.safe_load(to_yaml(load_config(ROOT / "configs" / recipe)))
    data["world"] = {**OLD_WORLD_KEYS, **data["world"]}
    data["teacher"] = {**OLD_TEACHER_KEYS, **data["teacher"]}
    data["solver"] = {"vllm": VLLMConfig().model_dump(mode="json"), **data["solver"]}
    return data


@pytest.mark.parametrize("recipe", ["tiny.yaml", "gsm8k_qwen.yaml", "socratic_zero_gsm8k.yaml", "sws_math.yaml"])
def test_a_run_directory_saved_before_the_unions_loads_as_its_recipe(recipe, tmp_path):
    saved = tmp_path / "config.yaml"
    saved.write_text(yaml.safe_dump(old_dump(recipe)))
    assert load_config(saved) == load_config(ROOT / "configs" / recipe)


def test_each_section_is_the_variant_its_key_names():
    config = load_config(ROOT / "configs/tiny.yaml")
    assert isinstance(config.world, ArithmeticWorldConfig) and isinstance(config.teacher, SymbolicTeacherConfig)
    gsm8k = load_config(ROOT / "configs/socratic_zero_gsm8k.yaml")
    assert isinstance(gsm8k.world, DatasetWorldConfig) and isinstance(gsm8k.teacher, LLMTeacherConfig)
    assert gsm8k.llm_teacher is gsm8k.teacher and config.llm_teacher is None


def test_a_key_of_another_variant_is_refused_with_what_to_remove():
    data = old_dump("sws_math.yaml")
    data["world"]["families"] = ["add"]  # not the old default: the user set it
    with pytest.raises(ConfigError) as caught:
        from_dict(data, "run/config.yaml")
    assert str(caught.value) == (
        "config key 'world.families' applies to world.name=arithmetic only, and run/config.yaml has "
        "world.name=dataset: remove it"
    )
    with pytest.raises(ConfigError, match=r"'teacher.endpoint' applies to teacher.kind=llm only"):
        load_config(ROOT / "configs/tiny.yaml", ["teacher.endpoint.base_url=http://127.0.0.1:8000/v1"])
    with pytest.raises(ConfigError, match=r"'solver.vllm' applies to solver.engine=vllm only"):
        load_config(ROOT / "configs/tiny.yaml", ["solver.vllm.enforce_eager=true"])


def test_an_unknown_variant_names_the_known_ones():
    with pytest.raises(ConfigError, match=r"'world.name' = 'grid'.*should be 'arithmetic' or 'dataset'"):
        load_config(ROOT / "configs/tiny.yaml", ["world.name=grid"])
