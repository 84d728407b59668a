"""The dataset world (real problem sets), question templates, and what a world must offer a recipe."""

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from curriculum.config import ConfigError, load_config
from curriculum.records import SolveRate
from curriculum.worlds import make_world
from curriculum.worlds.dataset import level_from_rate
from curriculum.worlds.loading import DatasetError, load_problem_set, question_fields

ROOT = Path(__file__).resolve().parents[3]
RECIPE = ROOT / "configs/gsm8k_qwen.yaml"


def world(*overrides: str):
    return make_world(load_config(RECIPE, ["model.path=/nonexistent/ok-for-config", *overrides]))


def test_heldout_subsets_are_fixed_by_the_seed_and_kept_out_of_the_seed_pool():
    first = world("world.heldout_size.gsm8k=20", "world.heldout_size.math500=10")
    again = world("world.heldout_size.gsm8k=20", "world.heldout_size.math500=10")
    other = world("world.heldout_size.gsm8k=20", "world.heldout_size.math500=10", "experiment.seed=1")
    held = first.heldout()
    assert [p.id for p in held] == [p.id for p in again.heldout()]
    assert [p.id for p in held] != [p.id for p in other.heldout()]
    assert [p.family for p in held] == ["gsm8k"] * 20 + ["math500"] * 10
    assert all(p.level in range(1, 6) for p in held if p.family == "math500")  # MATH's own levels
    assert all(p.concepts for p in held if p.family == "math500")  # its subject
    pool = first.seed_pool
    assert len(pool) == 7473 and {p.source for p in pool} == {"seed"}  # GSM8K train: no overlap with test
    everything = world("world.heldout_sets=[gsm8k]", "world.heldout_size.gsm8k=0").heldout()
    assert len(everything) == 1319  # 0: the whole benchmark


def test_a_validation_set_is_drawn_from_the_seed_sets_and_kept_out_of_the_seed_pool():
    first = world("world.validation_size=50")
    validation, pool = first.validation(), first.seed_pool
    assert len(validation) == 50 and len(pool) == 7473 - 50
    assert not {p.id for p in validation} & {p.id for p in pool}
    assert not {p.id for p in validation} & {p.id for p in first.heldout()}
    assert [p.id for p in validation] == [p.id for p in world("world.validation_size=50").validation()]
    assert [p.id for p in validation] != [
        p.id for p in world("world.validation_size=50", "experiment.seed=1").validation()
    ]
    assert world().validation() == []
    with pytest.raises(ConfigError, match="world.validation_size=7473 leaves no seed problem"):
        world("world.validation_size=7473").validation()


def test_seed_candidates_are_a_seeded_sample_of_the_pool():
    w = world()
    a = w.seed_candidates(16, random.Random(0))
    assert len({p.id for p in a}) == 16 and [p.id for p in a] == [p.id for p in w.seed_candidates(16, random.Random(0))]
    assert len(w.seed_candidates(10**6, random.Random(0))) == len(w.seed_pool)


def test_a_seed_pool_that_holds_heldout_questions_leaves_them_out():
    w = world("world.seed_sets=[math500]", "world.heldout_sets=[math500]")
    held = {p.id for p in w.heldout()}
    assert len(held) == 100 and len(w.seed_pool) == 400 and not held & {p.id for p in w.seed_pool}


@pytest.mark.parametrize(
    "rate, level", [(1.0, 1), (0.75, 1), (0.625, 2), (0.5, 2), (0.375, 3), (0.25, 3), (0.125, 4), (0.0, 5)]
)
def test_levels_from_the_base_models_solve_rate(rate, level):
    assert level_from_rate(rate, [0.75, 0.5, 0.25, 0.125]) == level


def test_screening_sets_a_level_only_where_the_data_has_none():
    w = world()
    gsm8k = w.seed_pool[0]
    assert gsm8k.level is None and w.screened(gsm8k, SolveRate(8, 8, 1.0)).level == 1
    math = world("world.seed_sets=[math500]", "world.heldout_sets=[gsm8k]").seed_pool[0]
    assert math.level is not None and w.screened(math, SolveRate(8, 0, 0.0)).level == math.level


def test_the_world_says_how_answers_are_asked_for_and_read():
    w = world()
    assert w.extraction == "boxed" and "\\boxed{}" in w.instruction and w.report_by == "family"
    toy = make_world(load_config(ROOT / "configs/tiny.yaml"))
    assert toy.extraction == "answer_colon" and toy.instruction == "" and toy.report_by == "level"
    custom = world("world.extraction=last_number", "world.instruction=' Answer with a number.'")
    assert custom.extraction == "last_number" and custom.instruction == " Answer with a number."


def test_a_question_can_be_composed_of_several_fields(tmp_path):
    from curriculum.config import DatasetSpec

    path = tmp_path / "svamp.jsonl"
    path.write_text(json.dumps({"Body": "Tom has 3 apples. ", "Question": "How many?", "Answer": 3.0}) + "\n")
    spec = DatasetSpec(path=str(path), question_field="{Body} {Question}", answer_field="Answer")
    [problem] = load_problem_set(spec, tmp_path, "svamp")
    assert problem.question == "Tom has 3 apples. How many?" and problem.answer == "3"
    assert question_fields("{Body} {Question}") == ["Body", "Question"] and question_fields("q") == ["q"]
    path.write_text('{"Body": "x", "Answer": 1}\n')
    with pytest.raises(DatasetError, match=r"svamp.jsonl:1: missing field 'Question' \(fields: Answer, Body\)"):
        load_problem_set(spec, tmp_path, "svamp")
    bad = DatasetSpec(path=str(path), question_field="{Body", answer_field="Answer")
    with pytest.raises(DatasetError, match="question_field template '{Body'"):
        load_problem_set(bad, tmp_path, "svamp")


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "teacher.enabled=true",
            "teacher.kind=symbolic needs a world with mutation operators and an oracle "
            "(world.name=arithmetic); on world.name=dataset set teacher.kind=llm or teacher.enabled=false",
        ),
        ("synthesis.enabled=true", "synthesis.kind=symbolic needs a world with mutation operators and an oracle"),
        (
            "generator.enabled=true",  # this recipe has no LLM Teacher to label the Generator's drafts
            "generator.enabled=true on world.name=dataset learns from the LLM Teacher and has its labeller vote "
            "the answers: set teacher.enabled=true, teacher.kind=llm and teacher.endpoint.base_url or "
            "teacher.serve.model (or generator.enabled=false)",
        ),
        ("world.seed_sets=[gsm8k_tran]", "world: 'gsm8k_tran' is not a dataset in `datasets`"),
        ("world.heldout_sets=[]", "world.name=dataset needs world.heldout_sets"),
        ("world.heldout_size.gsm8k=-1", "world.heldout_size.gsm8k=-1 must be >= 0"),
        ("model.kind=tiny", "model.kind=tiny is pretrained on the arithmetic world"),
    ],
)
def test_what_a_dataset_world_cannot_host_is_a_one_line_config_error(override, message):
    result = subprocess.run(
        [sys.executable, "-m", "curriculum.cli", "run", str(RECIPE), override, "synthesis.budget=4"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_config_errors_are_raised_before_anything_heavy():
    with pytest.raises(ConfigError, match="teacher.kind=symbolic needs"):
        load_config(RECIPE, ["teacher.enabled=true"])


def test_the_math_dpo_recipe_reads_levels_and_subjects_from_its_seed_pool():
    config = load_config(
        ROOT / "configs/math_dpo_qwen.yaml", ["world.seed_sets=[math500]", "world.heldout_sets=[gsm8k]"]
    )
    assert config.learner.algorithm == "dpo" and config.world.name == "dataset"
    pool = make_world(config).seed_pool  # MATH-500 stands in for MATH train (the hub is out of reach here)
    assert {p.level for p in pool} == {1, 2, 3, 4, 5} and len({p.concepts[0] for p in pool}) == 7
