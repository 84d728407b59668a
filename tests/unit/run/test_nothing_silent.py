"""Nothing silent: grading timeouts are counted per round and warned about, and data records
without an answer are refused in one line or, when asked, skipped and counted."""

import json
import logging
from pathlib import Path

import pytest
from scripted_roles import NoOpLearner

from agents.proxy import LocalRole
from curriculum.config import from_dict
from curriculum.engines.base import Generation, InferenceEngine
from curriculum.models import build_char_tokenizer
from curriculum.roles.api import Roles
from curriculum.roles.solver import Solver
from curriculum.run.loop import CoEvolution
from curriculum.run.resume import RoundState
from curriculum.store import Store
from curriculum.verify import Verifier
from curriculum.worlds.arithmetic import ArithmeticWorld

SLOW = "answer: 9^{9^{9}}"  # sympy takes far longer than the verifier allows to compare this


class FirstProblemSlow(InferenceEngine):
    """Every sample at the first question it is shown reads as a slow answer; the rest answer 0."""

    def __init__(self):
        self.tokenizer = build_char_tokenizer()
        self.slow_prompt = None

    def generate(
        self, prompts, n=1, temperature=1.0, top_p=1.0, max_new_tokens=128, seed=0, batch_size=None, progress=False
    ):
        self.slow_prompt = self.slow_prompt or prompts[0]
        return [[Generation(SLOW if p == self.slow_prompt else "answer: 0", 9, -1.0)] * n for p in prompts]

    def load_adapter(self, path, version=0):
        pass

    @property
    def adapter_path(self):
        return None


def test_a_round_with_slow_grades_reports_verify_timeouts_and_warns(tmp_path, caplog):
    config = from_dict(
        {
            "world": {"families": ["add"], "max_level": 1, "heldout_per_level": 2, "seed_set_size": 2},
            "solver": {"attempts": 4},
            "selection": {"fresh_fraction": 1.0, "failed_fraction": 0.0},
            "loop": {"problems_per_round": 2},
            "teacher": {"enabled": False},
            "generator": {"enabled": False},
            "verifier": {"timeout_s": 0.5},
        }
    )
    world = ArithmeticWorld(config.world, seed=0)
    with Store(tmp_path / "store.duckdb") as store, Verifier(config.verifier.timeout_s) as verifier:
        store.append(world.seed_problems())
        solver = Solver(FirstProblemSlow(), verifier, config.solver, extraction=world.extraction)
        roles = Roles(
            store=LocalRole(store), solvers=[LocalRole(solver)], teacher=None, learner=LocalRole(NoOpLearner())
        )
        loop = CoEvolution(config, roles, world, tmp_path / "run", prompt=lambda q: q + "\n")
        with caplog.at_level(logging.WARNING, logger="curriculum.run.loop"):
            report = loop.run_round(1)
    # 2 problems x 4 attempts, then 2 held-out problems: the first problem's 4 attempts timed out
    assert report.metrics["verify/grades"] == 10 and report.metrics["verify/timeouts"] == 4
    assert [r.getMessage() for r in caplog.records] == [
        "round 1: 4 of 10 grades (40.0%) ran past verifier.timeout_s=0.5 s and count as wrong; raise "
        "verifier.timeout_s (a busy machine, long answers)"
    ]


def test_timeouts_at_or_below_one_percent_of_a_rounds_grades_are_counted_without_a_warning(tmp_path, caplog):
    loop = CoEvolution.__new__(CoEvolution)  # only the warning rule: no roles needed
    loop.config = from_dict({})
    quiet = RoundState(
        round=3,
        start_version=0,
        policy_version=0,
        generator_version=0,
        metrics={"verify/grades": 300, "verify/timeouts": 3},
    )
    with caplog.at_level(logging.WARNING, logger="curriculum.run.loop"):
        loop.warn_on_timeouts(quiet)
    assert not caplog.records


# ----------------------------------------------------------------------------- records without an answer


def words_among_numbers(path, n: int = 40, start: int = 0):
    """Answers that are sentences ending in a number, but two are words: 'Yes' and a name."""
    answers = {7: "The answer is Yes", 23: "The answer is Alice"}
    rows = [
        {"question": f"What is {i} plus {i}?", "answer": answers.get(i, f"The answer is {2 * i}")}
        for i in range(start, start + n)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_a_word_answer_is_refused_in_one_line_or_skipped_and_counted(tmp_path):
    from curriculum.config import DatasetSpec
    from curriculum.worlds.loading import DatasetError, load_problem_set

    data = words_among_numbers(tmp_path / "words.jsonl")
    spec = DatasetSpec(path=str(data), extraction="last_number")
    with pytest.raises(DatasetError) as refused:
        load_problem_set(spec, tmp_path, "words")
    assert str(refused.value) == (
        f"{data}:8: no answer in field 'answer' by extraction 'last_number' (it holds 'The answer is Yes'); fix the "
        "record, or leave such records out with world.skip_invalid=true (curriculum eval: --skip-invalid)"
    )
    invalid: list[str] = []
    problems = load_problem_set(spec, tmp_path, "words", invalid=invalid)
    assert len(problems) == 38 and {p.answer for p in problems} == {str(2 * i) for i in range(40) if i not in (7, 23)}
    assert invalid == [
        f"{data}:8: no answer in field 'answer' by extraction 'last_number' (it holds 'The answer is Yes')",
        f"{data}:24: no answer in field 'answer' by extraction 'last_number' (it holds 'The answer is Alice')",
    ]


def test_a_dataset_world_with_skip_invalid_loads_and_counts_what_it_left_out(tmp_path):
    from curriculum.worlds.dataset import DatasetWorld

    words_among_numbers(tmp_path / "words.jsonl")
    words_among_numbers(tmp_path / "heldout.jsonl", n=5, start=100)
    settings = {
        "world": {"name": "dataset", "seed_sets": ["words"], "heldout_sets": ["heldout"]},
        "model": {"kind": "hf", "path": "unused"},
        "teacher": {"enabled": False},
        "generator": {"enabled": False},
        "data_root": str(tmp_path),
        "datasets": {name: {"path": f"{name}.jsonl", "extraction": "last_number"} for name in ("words", "heldout")},
    }
    from curriculum.worlds.loading import DatasetError

    with pytest.raises(DatasetError, match="words.jsonl:8: no answer"):
        _ = DatasetWorld(from_dict(settings)).seed_pool
    settings["world"]["skip_invalid"] = True
    world = DatasetWorld(from_dict(settings))
    assert len(world.heldout()) == 5 and len(world.seed_pool) == 38
    assert [line.split(": ")[0] for line in world.skipped_invalid] == [
        f"{tmp_path}/words.jsonl:8",
        f"{tmp_path}/words.jsonl:24",
    ]
    world.seed_pool, world.heldout()  # read once: counted once
    assert len(world.skipped_invalid) == 2


def test_curriculum_eval_refuses_or_skips_records_without_an_answer(tmp_path, capsys, base_path):
    from curriculum.cli import main

    data = words_among_numbers(tmp_path / "words.jsonl", n=9)
    args = [
        "eval",
        str(base_path),
        "--dataset",
        str(data),
        "--extraction",
        "last_number",
        "--max-new-tokens",
        "4",
        "--out",
        str(tmp_path / "r.json"),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {data}:8: no answer") and "--skip-invalid" in err[0]
    assert not (tmp_path / "r.json").exists()
    assert main([*args, "--skip-invalid"]) == 0
    assert "skipped 1 records with no answer" in capsys.readouterr().out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["problems"] == 8 and report["skipped_invalid"]["count"] == 1
    assert report["skipped_invalid"]["lines"][0].startswith(f"{data}:8: ")


def test_id_field_is_gone_rather_than_accepted_and_ignored():
    """Problem ids derive from the question (a retried write is a no-op): a dataset's own id field
    would be read by nothing, so naming one is refused in one line."""
    from curriculum.config import ConfigError

    with pytest.raises(ConfigError, match=r"^unknown config key 'datasets.mine.id_field'"):
        from_dict({"datasets": {"mine": {"path": "mine.jsonl", "id_field": "id"}}})


def test_a_run_saved_before_the_retired_keys_went_still_loads_but_a_real_setting_of_one_is_refused(tmp_path):
    """Every older run directory's config.yaml holds evaluation.instruction and, per dataset,
    completion_extraction and id_field at their old defaults: it resumes and evaluates as before."""
    from omegaconf import OmegaConf

    from curriculum.config import BOXED_INSTRUCTION, ConfigError, load_config, to_yaml

    tiny = Path(__file__).resolve().parents[3] / "configs/tiny.yaml"
    saved = OmegaConf.to_container(OmegaConf.create(to_yaml(load_config(tiny))))
    saved["evaluation"]["instruction"] = BOXED_INSTRUCTION
    for spec in saved["datasets"].values():
        spec.update(completion_extraction="auto", id_field=None)
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(saved)))
    assert load_config(tmp_path / "config.yaml") == load_config(tiny)
    with pytest.raises(ConfigError, match=r"^unknown config key 'datasets.gsm8k.completion_extraction'"):
        load_config(tmp_path / "config.yaml", ["datasets.gsm8k.completion_extraction=boxed"])
