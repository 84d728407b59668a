import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from curriculum.config import Config, ConfigError, flatten, load_config, to_yaml

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_validates(path):
    config = load_config(path)
    assert isinstance(config, Config)


def test_tiny_recipe_has_solver_attempts_and_benchmarks():
    config = load_config(ROOT / "configs/tiny.yaml")
    assert config.solver.attempts == 8
    assert {"gsm8k", "math500", "aime24"} <= set(config.datasets)


def test_dotlist_override_applies():
    config = load_config(ROOT / "configs/tiny.yaml", ["solver.attempts=4", "experiment.seed=7"])
    assert config.solver.attempts == 4
    assert config.experiment.seed == 7


def test_unknown_key_names_full_key_and_suggestion():
    with pytest.raises(ConfigError) as err:
        load_config(ROOT / "configs/tiny.yaml", ["solver.atempts=3"])
    message = str(err.value)
    assert "unknown config key 'solver.atempts' (did you mean 'solver.attempts'?)" in message
    assert "\n" not in message


def test_unknown_top_level_section(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("solvr:\n  attempts: 2\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'solvr' \(did you mean 'solver'\?\)"):
        load_config(path)


@pytest.mark.parametrize(
    "override, expected",
    [
        ("solver.attempts=0", r"'solver.attempts' = 0 .*greater than or equal to 1"),
        ("solver.attempts=many", r"'solver.attempts' = 'many' .*valid integer"),
        ("solver.top_p=1.5", r"'solver.top_p' = 1.5 .*less than or equal to 1"),
        ("model.kind=hf", r"model.kind=hf needs model.path"),
        (
            "selection.band_low=0.3",
            r"selection.band_low=0.3 is not a multiple of 1/solver.attempts .*use 0.25 or 0.375",
        ),
        ("selection.band_low=0.875", r"selection.band_low=0.875 is above selection.band_high=0.75"),
        ("loop.rounds=-1", r"'loop.rounds' = -1 .*greater than or equal to 0"),
        ("verifier.timeout_s=0", r"'verifier.timeout_s' = 0 .*greater than 0"),
    ],
)
def test_bad_values_name_key_value_and_expectation(override, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config(ROOT / "configs/tiny.yaml", [override])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("solver: [unclosed\n")
    with pytest.raises(ConfigError, match=f"cannot parse {bad}"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match=f"cannot parse {scalar}"):
        load_config(scalar)
    listed = tmp_path / "list.yaml"
    listed.write_text("- solver\n")
    with pytest.raises(ConfigError, match="must hold a mapping of config sections, not list"):
        load_config(listed)


def test_override_without_equals_is_rejected():
    with pytest.raises(ConfigError, match="key=value"):
        load_config(ROOT / "configs/tiny.yaml", ["solver.attempts"])


def test_include_merges_and_local_keys_win(tmp_path):
    (tmp_path / "base.yaml").write_text("solver:\n  attempts: 16\n  temperature: 0.5\n")
    (tmp_path / "top.yaml").write_text("include: [base.yaml]\nsolver:\n  attempts: 4\n")
    config = load_config(tmp_path / "top.yaml")
    assert (config.solver.attempts, config.solver.temperature) == (4, 0.5)


def test_config_is_frozen_and_round_trips_through_yaml(tmp_path):
    config = load_config(ROOT / "configs/tiny.yaml")
    with pytest.raises(ValidationError):
        config.solver.attempts = 3  # type: ignore[misc]
    path = tmp_path / "resolved.yaml"
    path.write_text(to_yaml(config))
    assert load_config(path) == config
    assert flatten(config)["solver.attempts"] == 8


def test_importing_config_does_not_import_heavy_libraries():
    code = "import sys, curriculum.config; print(any(m in sys.modules for m in ('torch', 'ray', 'trl')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cli_reports_unknown_key_in_one_line_with_exit_2():
    result = subprocess.run(
        [sys.executable, "-m", "curriculum.cli", "run", str(ROOT / "configs/tiny.yaml"), "solver.atempts=3"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: unknown config key 'solver.atempts' (did you mean 'solver.attempts'?) "
        f"in {ROOT / 'configs/tiny.yaml'} with overrides"
    ]


LLM = ["teacher.kind=llm", "teacher.endpoint.base_url=http://127.0.0.1:8000/v1", "teacher.endpoint.model=m"]


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["teacher.kind=llm"], "teacher.kind=llm needs teacher.endpoint.base_url .* or teacher.serve.model"),
        ([*LLM, "teacher.serve.model=/m"], "set teacher.endpoint.base_url .* or teacher.serve .*, not both"),
        (["teacher.kind=llm", "teacher.endpoint.base_url=http://x/v1"], "needs teacher.endpoint.model"),
        ([*LLM, "teacher.endpoint.api_key_env=sk-live-123"], "NAME of an environment variable"),
        ([*LLM, "teacher.labels.min_agreement=9"], "min_agreement=9 is above samples=8"),
        (["synthesis.enabled=true", "synthesis.kind=llm"], "synthesis.kind=llm writes with the Teacher's model"),
        (["teacher.kind=llm", "teacher.serve.model=/m", "ray.teacher.num_gpus=1"], "teacher.serve.num_gpus"),
    ],
)
def test_llm_teacher_settings_are_checked_in_one_line(overrides, expected):
    with pytest.raises(ConfigError, match=expected) as caught:
        load_config(ROOT / "configs/tiny.yaml", overrides)
    assert "\n" not in str(caught.value)


def test_a_dataset_world_hosts_the_llm_teacher_and_llm_synthesis_but_not_the_symbolic_ones():
    recipe = ROOT / "configs/socratic_zero_gsm8k.yaml"
    config = load_config(recipe, ["synthesis.enabled=true", "synthesis.kind=llm", "synthesis.budget=8"])
    assert config.uses_llm_teacher and config.teacher.serve.model == "Qwen/Qwen2.5-7B-Instruct"
    symbolic = ROOT / "configs/gsm8k_qwen.yaml"  # a dataset world whose recipe sets no LLM Teacher keys
    with pytest.raises(ConfigError, match="teacher.kind=symbolic needs a world with mutation operators"):
        load_config(symbolic, ["teacher.enabled=true", "teacher.kind=symbolic"])
    with pytest.raises(ConfigError, match="synthesis.kind=symbolic needs a world"):
        load_config(recipe, ["synthesis.enabled=true", "synthesis.budget=8"])
    assert load_config(recipe).generator.enabled  # the LLM Teacher's labeller votes the Generator's answers
    for missing in (["teacher.enabled=false"], ["teacher.serve=null"]):
        with pytest.raises(ConfigError, match="generator.enabled=true on world.name=dataset learns from the LLM"):
            load_config(recipe, missing)
    api = load_config(
        recipe,
        [
            "teacher.serve=null",
            "teacher.endpoint.base_url=https://api.example.com/v1",
            "teacher.endpoint.model=gpt",
            "teacher.endpoint.api_key_env=OPENAI_API_KEY",
        ],
    )
    assert api.teacher.serve is None and "sk-" not in to_yaml(api)


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["ray.learner.num_gpus=2"], r"ray.learner.num_gpus=2: .* set ray.learner.count=2 with ray.learner.num_gpus=1"),
        (
            ["ray.learner.count=2", "ray.in_process=true"],
            r"ray.learner.count=2 .* with ray.in_process=true set it to 1",
        ),
        (["ray.learner.count=3", "learner.batch_size=16"], r"learner.batch_size=16 does not split evenly over ray"),
        (
            ["ray.learner.count=3", "learner.algorithm=grpo", "learner.grpo.groups_per_step=2", "solver.attempts=4"],
            r"learner.grpo.groups_per_step x solver.attempts=8 does not split evenly over ray.learner.count=3",
        ),
    ],
)
def test_learner_workers_and_their_gpus_are_checked_in_one_line(overrides, expected):
    with pytest.raises(ConfigError, match=expected) as caught:
        load_config(ROOT / "configs/tiny.yaml", overrides)
    assert "\n" not in str(caught.value)
    assert (
        load_config(ROOT / "configs/tiny.yaml", ["ray.learner.count=2", "ray.learner.num_gpus=1"]).ray.learner.count
        == 2
    )


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (
            ["loop.mode=async", "learner.algorithm=sft"],
            r"loop.mode=async trains on attempts one policy version old, and ",
        ),
        (["loop.mode=async", "loop.max_staleness=0"], r"loop.max_staleness=0 must be at least 1"),
        (["loop.max_staleness=2"], r"loop.max_staleness=2 applies to loop.mode=async only"),
        (
            ["loop.mode=async", "learner.algorithm=grpo", "learner.grpo.importance_sampling='off'"],
            r"loop.mode=async needs learner.grpo.importance_sampling",
        ),
        (
            ["loop.mode=async", "ray.solver.num_gpus=0.5", "ray.learner.num_gpus=0.5"],
            r"loop.mode=async samples while the Learner trains, but the Solvers sleep then "
            r"\(solver.sleep_while_learning resolves to true",
        ),
        (["loop.mode=async", "solver.sleep_while_learning=true"], r"the Solvers sleep then"),
    ],
)
def test_async_mode_is_checked_in_one_line(overrides, expected):
    with pytest.raises(ConfigError, match=expected) as caught:
        load_config(ROOT / "configs/tiny.yaml", overrides)
    assert "\n" not in str(caught.value)
    config = load_config(ROOT / "configs/tiny.yaml", ["loop.mode=async", "loop.max_staleness=2"])
    assert (config.loop.staleness_bound, load_config(ROOT / "configs/tiny.yaml").loop.staleness_bound) == (2, None)
