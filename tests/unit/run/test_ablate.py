"""The ablation recipes, the equal-compute check and the results written from runs."""

import math
from pathlib import Path

import pytest

from curriculum.config import ConfigError, flatten, load_config
from curriculum.records import StageRecord
from curriculum.report.ablation import (
    RunResult,
    collect,
    grouped_seconds,
    mean_std,
    results_markdown,
    stage_seconds,
    write_outputs,
)
from curriculum.run.ablate import AblationError, check_equal_compute, load_recipes, seed_config
from curriculum.run.resume import RoundState

ROOT = Path(__file__).resolve().parents[3]
RECIPES = [
    str(ROOT / f"configs/{name}.yaml")
    for name in ("socratic_zero_tiny", "sws_tiny", "static_tiny", "random_synthesis_tiny", "static_dpo_tiny")
]
MAKERUN = [str(ROOT / f"configs/makerun_{name}.yaml") for name in ("socratic_zero", "static_dpo", "sft")]


def test_recipes_differ_from_the_tiny_recipe_only_in_their_own_settings():
    tiny = flatten(load_config(ROOT / "configs/tiny.yaml"))
    shared = {
        "learner.steps_per_round",
        "learner.batch_size",
        "learner.grpo.groups_per_step",
        "experiment.name",
        "world.seed_set_size",
        "selection.seed_candidates",
        "loop.rounds",
        "loop.problems_per_round",
    }
    own = {
        "socratic_zero_tiny": set(),
        "sws_tiny": {
            "learner.algorithm",
            "learner.learning_rate",
            "teacher.enabled",
            "generator.enabled",
            "synthesis.enabled",
            "synthesis.budget",
        },
        "static_tiny": {"learner.algorithm", "learner.learning_rate", "teacher.enabled", "generator.enabled"},
        "random_synthesis_tiny": {
            "learner.algorithm",
            "learner.learning_rate",
            "teacher.enabled",
            "generator.enabled",
            "synthesis.enabled",
            "synthesis.budget",
            "synthesis.concepts",
        },
        "static_dpo_tiny": {"teacher.enabled", "generator.enabled"},
    }
    for recipe in load_recipes(RECIPES, []):
        flat = flatten(recipe.config)
        differ = {k for k in flat if flat[k] != tiny.get(k)}
        assert differ <= shared | own[recipe.name], recipe.name
        assert own[recipe.name] <= differ, recipe.name


def test_the_recipes_have_equal_compute_and_unequal_ones_are_refused():
    recipes = load_recipes(RECIPES, [])
    assert check_equal_compute(recipes) == {
        "rounds": 4,
        "attempts_per_round": 2560,
        "learner_steps_per_round": 32,
        "sequences_per_learner_step": 64,
    }  # 32 DPO pairs, 8 GRPO groups of 8
    sws = load_config(RECIPES[1])
    assert sws.loop.selected_per_round(sws.synthesis) == 320 - 64  # the screened drafts share the budget
    with pytest.raises(AblationError, match="learner.steps_per_round is not set"):
        check_equal_compute(load_recipes([str(ROOT / "configs/tiny.yaml")], ["learner.steps_per_round=null"]))
    unequal = load_recipes(RECIPES[:1], ["learner.steps_per_round=3"]) + load_recipes(RECIPES[1:2], [])
    with pytest.raises(AblationError, match="learner_steps_per_round is 3 for socratic_zero_tiny but 32 for sws_tiny"):
        check_equal_compute(unequal)
    with pytest.raises(AblationError, match="share a file name"):
        load_recipes(RECIPES[:1] * 2, [])


def test_the_make_run_recipes_are_tiny_yaml_and_differ_only_in_their_own_settings():
    tiny = flatten(load_config(ROOT / "configs/tiny.yaml"))
    own = {
        "makerun_socratic_zero": set(),
        "makerun_static_dpo": {"teacher.enabled", "generator.enabled"},
        "makerun_sft": {"teacher.enabled", "generator.enabled", "learner.algorithm", "learner.batch_size"},
        "makerun_validated": {f"world.validation_per_level.{level}" for level in range(1, 6)},
    }
    recipes = load_recipes([*MAKERUN, str(ROOT / "configs/makerun_validated.yaml")], [])
    for recipe in recipes:
        flat = flatten(recipe.config)
        assert {k for k in flat if flat[k] != tiny.get(k)} == own[recipe.name] | {"experiment.name"}, recipe.name
    # tiny.yaml's compute: 640 problems x 8 attempts, 48 steps of 32 DPO pairs = 64 SFT examples
    assert check_equal_compute(recipes) == {
        "rounds": 4,
        "attempts_per_round": 5120,
        "learner_steps_per_round": 48,
        "sequences_per_learner_step": 64,
    }


def test_sft_batches_count_examples_and_dpo_batches_count_pairs():
    dpo, sft = MAKERUN[1], MAKERUN[2]
    with pytest.raises(
        AblationError,
        match="sequences_per_learner_step is 64 for makerun_static_dpo but 32 for "
        "makerun_sft; .*learner.batch_size counts DPO pairs",
    ):
        check_equal_compute(load_recipes([dpo], []) + load_recipes([sft], ["learner.batch_size=32"]))
    grpo = load_recipes([RECIPES[1]], ["learner.grpo.groups_per_step=4"])  # 4 groups of 8 = 32 sequences
    with pytest.raises(AblationError, match="sequences_per_learner_step is 64 for socratic_zero_tiny but 32"):
        check_equal_compute(load_recipes(RECIPES[:1], []) + grpo)


def stage_record(round, seconds):
    state = RoundState(round=round, start_version=0, policy_version=0, done=list(seconds), seconds=dict(seconds))
    return StageRecord(round=round, stage=list(seconds)[-1], state=state.to_json())


def test_stage_seconds_add_each_rounds_last_record_and_group_them():
    records = [
        stage_record(0, {"seed": 5.0}),
        stage_record(1, {"select": 1.0}),
        stage_record(1, {"select": 1.0, "attempt": 10.0}),
        stage_record(
            1,
            {
                "select": 1.0,
                "attempt": 10.0,
                "learn": 20.0,
                "teach": 2.0,
                "distil": 3.0,
                "evaluate": 4.0,
                "snapshot": 0.5,
                "checkpoint": 0.5,
            },
        ),
        stage_record(2, {"select": 1.0, "attempt": 12.0, "learn": 21.0, "synthesize": 6.0}),
    ]  # killed after
    seconds = stage_seconds(records)
    assert seconds == {
        "seed": 5.0,
        "select": 2.0,
        "attempt": 22.0,
        "learn": 41.0,
        "teach": 2.0,
        "distil": 3.0,
        "evaluate": 4.0,
        "snapshot": 0.5,
        "checkpoint": 0.5,
        "synthesize": 6.0,
    }
    assert grouped_seconds({**seconds, "new_stage": 1.0}) == {
        "generation": 28.0,
        "training": 41.0,
        "teacher + generator": 5.0,
        "evaluation": 4.0,
        "seed screening": 5.0,
        "other": 4.0,
    }  # select, snapshot, checkpoint and the stage no group names


def test_config_checks_of_the_new_sections():
    with pytest.raises(ConfigError, match=r"learner.grpo.filter_low=0.125 is not a multiple of 1/solver.attempts"):
        load_config(RECIPES[1], ["solver.attempts=4", "learner.grpo.filter_low=0.125"])
    load_config(RECIPES[1], ["solver.attempts=4"])  # the default filter band follows k: [1/4, 3/4]
    load_config(RECIPES[1], ["solver.attempts=4", "learner.grpo.filter_low=0.25", "learner.grpo.filter_high=0.75"])
    load_config(RECIPES[0], ["solver.attempts=4"])  # the GRPO band is not checked for a DPO recipe
    with pytest.raises(ConfigError, match="synthesis.budget=64 must be below loop.problems_per_round=64"):
        load_config(RECIPES[1], ["synthesis.budget=64", "loop.problems_per_round=64"])
    with pytest.raises(ConfigError, match="weakness.min_rounds=4 is above weakness.window=3"):
        load_config(RECIPES[1], ["weakness.min_rounds=4"])


def test_seed_config_puts_each_run_under_the_output_folder(tmp_path):
    recipe = load_recipes(RECIPES[1:2], [])[0]
    config = seed_config(recipe, 7, tmp_path)
    assert (config.experiment.seed, config.experiment.run_name) == (7, "seed7")
    assert config.experiment.runs_dir == str(tmp_path / "runs") and config.experiment.name == "sws_tiny"


def result(recipe, seed, final, by_round, attempts=512.0, teach=0.0, base="base-aaa"):
    return RunResult(
        recipe=recipe,
        seed=seed,
        run_dir=f"runs/{recipe}/seed{seed}",
        wall_seconds=60.0 + seed,
        levels=[1, 2],
        base={"overall": 0.5, "L1": 1.0, "L2": 0.0},
        final={"overall": final, "L1": 1.0, "L2": 2 * final - 1.0},
        accuracy_by_round=by_round,
        tokens_per_attempt=40.0,
        attempts_per_round=attempts,
        learner_steps_per_round=8.0,
        stage_seconds={
            "seed": 4.0,
            "attempt": 30.0 + seed,
            "learn": 20.0,
            "teach": teach,
            "evaluate": 5.0,
            "select": 1.0,
        },
        base_model=f".cache/curriculum/{base}{seed}",
    )


def test_results_table_and_picture(tmp_path):
    results = [
        result("sws", 0, 0.6, [0.5, 0.55, 0.6], teach=20.0),
        result("sws", 1, 0.7, [0.5, 0.6, 0.7], teach=20.0),
        result("static", 0, 0.5, [0.5, 0.5, 0.5]),
        result("static", 1, 0.5, [0.5, 0.45, 0.5]),
    ]
    budget = {"rounds": 2, "attempts_per_round": 512, "learner_steps_per_round": 8}
    text = results_markdown(results, ["sws", "static", "random"], "curriculum ablate x", budget, [0, 1])
    # overall 0.6 and 0.7 -> 65.0 ± 7.1 (sample std); L2 0.2 and 0.4 -> 30.0 ± 14.1; change +15 ± 7.1.
    assert (
        "| sws | 2 | 100.0 ± 0.0 | 30.0 ± 14.1 | 65.0 ± 7.1 | 15.0 ± 7.1 | 40.0 ± 0.0 | 512 ± 0 | 8.0 ± 0.0 "
        "| 60 ± 1 |" in text
    )
    assert "| base model | 2 | 100.0 ± 0.0 | 0.0 ± 0.0 | 50.0 ± 0.0 |" in text
    assert "| random | 0 |" in text  # a recipe without finished runs is shown, not dropped
    assert "| static | 50.0 ± 0.0 | 47.5 ± 3.5 | 50.0 ± 0.0 |" in text  # accuracy per round
    assert "Command: `curriculum ablate x`" in text
    assert "below budget" not in text
    # seconds per stage group: generation 30 and 31 s; teacher 20 of 80 and 81 s total (25.0%, 24.7%)
    assert "| sws | 30 ± 1 | 20 ± 0 | 20 ± 0 | 5 ± 0 | 4 ± 0 | 1 ± 0 | 80 ± 1 | 24.8 ± 0.2% |" in text
    assert "| static | 30 ± 1 | 20 ± 0 | 0 ± 0 | 5 ± 0 | 4 ± 0 | 1 ± 0 | 60 ± 1 | 0.0 ± 0.0% |" in text
    assert "| sws | 60.0 | 70.0 |" in text and "| random | - | - |" in text  # final overall accuracy per seed
    assert "Base model per seed, shared by its recipes: seed 0 `base-aaa0`, seed 1 `base-aaa1`." in text
    mixed = [*results, result("random", 0, 0.5, [0.5, 0.5, 0.5], base="base-bbb")]
    assert (
        "**Different base models within a seed** (the recipes are not comparable there): seed 0: base-aaa0, "
        "base-bbb0" in results_markdown(mixed, ["sws", "static", "random"], "x", budget, [0, 1])
    )
    short = [*results[:2], result("static", 0, 0.5, [0.5, 0.5, 0.5], attempts=384.0)]
    assert "- below budget: static used 384 of 512 attempts per round (75.0%)" in results_markdown(
        short, ["sws", "static"], "curriculum ablate x", budget, [0]
    )
    tables = [line for line in text.splitlines() if line.startswith("|")]
    header, rule = tables[0], tables[1]
    assert header.count("|") == rule.count("|") == tables[2].count("|")  # a well-formed Markdown table
    write_outputs(tmp_path, results, ["sws", "static"], "curriculum ablate x", budget, [0, 1])
    assert (tmp_path / "accuracy.png").stat().st_size > 1000
    assert (tmp_path / "results.md").read_text() == results_markdown(
        results, ["sws", "static"], "curriculum ablate x", budget, [0, 1]
    )


def test_mean_std_is_the_sample_std_and_skips_nan():
    assert mean_std([1.0, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))
    assert mean_std([2.0, math.nan]) == (2.0, 0.0)
    assert all(math.isnan(v) for v in mean_std([]))


def test_retention_table_reports_drops_and_validation_when_the_runs_have_it():
    budget = {"rounds": 2, "attempts_per_round": 512, "learner_steps_per_round": 8}
    plain = [result("sws", seed, 0.6, [0.5, 0.6, 0.6]) for seed in (0, 1)]
    assert "## Retention" not in results_markdown(plain, ["sws"], "x", budget, [0, 1])  # no drops measured
    for run, (worst, end) in zip(plain, [(6.0, 2.0), (8.0, 4.0)]):
        run.worst_drop, run.end_drop = worst, end
    text = results_markdown(plain, ["sws"], "x", budget, [0, 1])
    assert "| recipe | held-out worst drop | held-out drop at end |" in text
    assert "| sws | 7.0 ± 1.4 | 3.0 ± 1.4 |" in text and "validation" not in text
    for run, final in zip(plain, [0.9, 0.7]):
        run.validation_worst_drop, run.validation_end_drop = 5.0, 1.0
        run.validation_final = {"overall": final, "L1": 1.0, "L2": final}
    text = results_markdown(plain, ["sws"], "x", budget, [0, 1])
    assert "Choose settings by the validation columns; the held-out set is the report." in text
    assert "| sws | 7.0 ± 1.4 | 3.0 ± 1.4 | 5.0 ± 0.0 | 1.0 ± 0.0 | 100.0 ± 0.0 | 80.0 ± 14.1 | 80.0 ± 14.1 |" in text


def test_collect_reads_the_drops_and_validation_of_each_round(tmp_path):
    import json

    from curriculum.evaluation import Cell, EvalResult
    from curriculum.records import RoundStats
    from curriculum.store import Store

    def evaluation(l1: int, l2: int) -> dict:
        return EvalResult(cells={("add", 1): Cell(10, l1, 50), ("add", 2): Cell(10, l2, 50)}).to_dict()

    (tmp_path / "results.json").write_text(json.dumps({"base_eval": evaluation(10, 9), "final_eval": evaluation(9, 8)}))
    rounds = [
        {"retention/worst_drop": 20.0, "validation/worst_drop": 25.0, "validation/accuracy": 0.7},
        {"retention/worst_drop": 10.0, "validation/worst_drop": 5.0, "validation/accuracy": 0.8},
    ]
    with Store(tmp_path / "store.duckdb") as store:
        for round_, metrics in enumerate(rounds, start=1):
            metrics = {**metrics, "validation/level_2/accuracy": 0.6 + 0.1 * round_, "eval/accuracy": 0.85}
            store.append([RoundStats(round=round_, policy_version=round_, seconds={"learn": 1.0}, metrics=metrics)])
    run = collect(tmp_path, "recipe", 0, 60.0)
    assert (run.worst_drop, run.end_drop) == (20.0, 10.0)
    assert (run.validation_worst_drop, run.validation_end_drop) == (25.0, 5.0)
    assert run.validation_final == {"overall": 0.8, "L2": pytest.approx(0.8)}
    assert run.final == {"overall": 0.85, "L1": 0.9, "L2": 0.8} and run.accuracy_by_round == [0.95, 0.85, 0.85]
