"""Loading problem sets: field mapping, each format, and one-line errors naming file and line."""

from __future__ import annotations

import os

# Never reach the network, even if a test asks for a name that is not a local path.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from curriculum.config import Config, DatasetSpec, load_config  # noqa: E402
from curriculum.worlds.loading import DatasetError, load_named, load_problem_set  # noqa: E402

REPO = Path(__file__).resolve().parents[3]

MATH_ROWS = [
    {"problem": "What is $1+1$?", "answer": "2", "solution": "$1+1=\\boxed{2}$", "subject": "Algebra", "level": 1},
    {
        "problem": "Halve one.",
        "answer": "\\frac{1}{2}",
        "solution": "It is $\\boxed{\\frac12}$.",
        "subject": "Prealgebra",
        "level": 3,
    },
]
MATH_SPEC = DatasetSpec(
    path="math.jsonl",
    question_field="problem",
    answer_field="answer",
    solution_field="solution",
    subject_field="subject",
    level_field="level",
)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ----------------------------------------------------------------------------- formats


def test_jsonl_maps_fields_to_problems(tmp_path):
    write_jsonl(tmp_path / "math.jsonl", [MATH_ROWS[0], {**MATH_ROWS[1], "level": "Level 3"}])  # MATH's own style
    problems = load_problem_set(MATH_SPEC, tmp_path, "mini_math")
    assert [p.question for p in problems] == ["What is $1+1$?", "Halve one."]
    assert [p.answer for p in problems] == ["2", "\\frac{1}{2}"]
    assert [p.level for p in problems] == [1, 3]
    assert [p.concepts for p in problems] == [["Algebra"], ["Prealgebra"]]
    assert problems[1].solution == "It is $\\boxed{\\frac12}$."
    assert {p.source for p in problems} == {"dataset"}
    assert {p.family for p in problems} == {"mini_math"}


def test_answer_extracted_from_a_worked_solution_keeps_the_solution(tmp_path):
    rows = [{"question": "Q1", "answer": "3 + 4 = <<3+4=7>>7\n#### 7"}, {"question": "Q2", "answer": "#### 1,200"}]
    write_jsonl(tmp_path / "gsm.jsonl", rows)
    spec = DatasetSpec(path="gsm.jsonl", extraction="gsm8k")
    problems = load_problem_set(spec, tmp_path, "gsm")
    assert [p.answer for p in problems] == ["7", "1200"]
    assert problems[0].solution == rows[0]["answer"]


def test_list_and_float_answers_become_plain_strings(tmp_path):
    rows = [
        {"question": "Q1", "final_answer": ["$69$,$84$"], "solution": ["first way", "second way"]},
        {"question": "Q2", "final_answer": ["$(1,8,19), (2,7,13)$"], "solution": ["only way"]},
        {"question": "Q3", "final_answer": ["$3$", "$5$"], "solution": []},
        {"question": "Q4", "final_answer": 27.0},
        {"question": "Q5", "final_answer": 2.5},
    ]
    write_jsonl(tmp_path / "olympiad.jsonl", rows)
    problems = load_problem_set(
        DatasetSpec(path="olympiad.jsonl", answer_field="final_answer", solution_field="solution"), tmp_path, "o"
    )
    assert [p.answer for p in problems] == ["69,84", "(1,8,19), (2,7,13)", "3, 5", "27", "2.5"]
    assert [p.solution for p in problems] == ["first way", "only way", "", "", ""]


def test_parquet_loads(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(MATH_ROWS), tmp_path / "math.parquet")
    spec = MATH_SPEC.model_copy(update={"path": "math.parquet"})
    problems = load_problem_set(spec, tmp_path, "m")
    assert [p.answer for p in problems] == ["2", "\\frac{1}{2}"]
    assert [p.level for p in problems] == [1, 3]


def test_hf_dataset_saved_to_disk_loads_and_writes_nothing(tmp_path):
    import datasets

    datasets.DatasetDict({"test": datasets.Dataset.from_list(MATH_ROWS)}).save_to_disk(str(tmp_path / "saved"))
    before = listing(tmp_path)
    spec = MATH_SPEC.model_copy(update={"path": "saved", "format": "hf"})
    problems = load_problem_set(spec, tmp_path, "m")
    assert [p.answer for p in problems] == ["2", "\\frac{1}{2}"]
    auto = load_problem_set(spec.model_copy(update={"format": "auto"}), tmp_path, "m")  # a folder -> hf
    assert auto == problems
    assert listing(tmp_path) == before
    with pytest.raises(DatasetError, match=r"saved has no split 'train' \(splits: test\)"):
        load_problem_set(spec.model_copy(update={"split": "train"}), tmp_path, "m")


def test_hf_local_data_folder_and_file_load_through_load_dataset(tmp_path):
    folder = tmp_path / "local"
    folder.mkdir()
    write_jsonl(folder / "test.jsonl", MATH_ROWS)  # datasets names the split after the file
    spec = MATH_SPEC.model_copy(update={"path": "local", "format": "hf"})
    before = listing(tmp_path)
    assert [p.answer for p in load_problem_set(spec, tmp_path, "m")] == ["2", "\\frac{1}{2}"]
    single = spec.model_copy(update={"path": "local/test.jsonl", "split": "validation"})
    assert [p.answer for p in load_problem_set(single, tmp_path, "m")] == ["2", "\\frac{1}{2}"]
    assert listing(tmp_path) == before


def test_relative_paths_start_at_data_root_and_absolute_paths_do_not(tmp_path):
    (tmp_path / "sub").mkdir()
    path = write_jsonl(tmp_path / "sub" / "math.jsonl", MATH_ROWS)
    assert len(load_problem_set(MATH_SPEC.model_copy(update={"path": "sub/math.jsonl"}), tmp_path, "m")) == 2
    spec = MATH_SPEC.model_copy(update={"path": str(path)})
    assert len(load_problem_set(spec, tmp_path / "elsewhere", "m")) == 2


def test_benchmarks_yaml_is_a_valid_config_with_every_benchmark():
    config = load_config(REPO / "configs" / "benchmarks.yaml")
    assert config.data_root == "../shared/data/benchmarks"
    assert set(config.datasets) == {
        "aime24",
        "aime25",
        "amc23",
        "gsm8k",
        "gsm8k_train",
        "math500",
        "minerva_math",
        "olympiadbench",
    }
    assert config.datasets["minerva_math"].answer_field == "solution"
    assert config.datasets["minerva_math"].extraction == "boxed"
    assert config.datasets["gsm8k"].extraction == "gsm8k"
    assert config.datasets["math500"].level_field == "level"
    assert config.datasets["olympiadbench"].answer_field == "final_answer"


# ----------------------------------------------------------------------------- errors


def load_error(tmp_path: Path, content: bytes | str, spec: DatasetSpec | None = None) -> str:
    path = tmp_path / "data.jsonl"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    with pytest.raises(DatasetError) as info:
        load_problem_set(spec or DatasetSpec(path="data.jsonl"), tmp_path, "d")
    message = str(info.value)
    assert "\n" not in message
    return message


def test_bad_json_line_names_file_and_line(tmp_path):
    message = load_error(tmp_path, '{"question": "a", "answer": "1"}\n\n{"question": "b", "answer": \n')
    assert f"{tmp_path / 'data.jsonl'}:3: invalid JSON" in message


def test_missing_field_names_the_field_line_and_what_is_there(tmp_path):
    message = load_error(tmp_path, '{"question": "a", "answer": "1"}\n{"question": "b", "solution": "x"}\n')
    assert message.endswith("data.jsonl:2: missing field 'answer' (fields: question, solution)")


def test_missing_level_field_is_reported(tmp_path):
    spec = DatasetSpec(path="data.jsonl", level_field="level")
    message = load_error(tmp_path, '{"question": "a", "answer": "1"}\n', spec)
    assert "data.jsonl:1: missing field 'level'" in message


def test_empty_file(tmp_path):
    assert load_error(tmp_path, "\n \n").endswith("data.jsonl is empty: no records (dataset 'd')")
    assert load_error(tmp_path, "").endswith("data.jsonl is empty: no records (dataset 'd')")


def test_json_array_instead_of_json_lines(tmp_path):
    message = load_error(tmp_path, json.dumps([{"question": "a", "answer": "1"}], indent=2))
    assert "data.jsonl:1: a JSON array, but the file must be JSON Lines" in message


def test_binary_junk(tmp_path):
    assert "data.jsonl:1: binary data" in load_error(tmp_path, b"PAR1\x00\x15\x04\xff\xfe")
    assert "data.jsonl:2: not UTF-8 text" in load_error(tmp_path, b'{"question": "a", "answer": "1"}\n\xff\xfe\xfa\n')


def test_line_that_is_not_an_object(tmp_path):
    assert "data.jsonl:1: expected a JSON object, got str" in load_error(tmp_path, '"just a string"\n')


def test_answer_the_extraction_cannot_find(tmp_path):
    spec = DatasetSpec(path="data.jsonl", extraction="gsm8k")
    message = load_error(tmp_path, '{"question": "a", "answer": "no marker"}\n', spec)
    assert "data.jsonl:1: no answer in field 'answer' by extraction 'gsm8k'" in message


def test_null_answer_and_bad_level(tmp_path):
    assert "data.jsonl:1: field 'answer' is None" in load_error(tmp_path, '{"question": "a", "answer": null}\n')
    spec = DatasetSpec(path="data.jsonl", level_field="level")
    message = load_error(tmp_path, '{"question": "a", "answer": "1", "level": "hard"}\n', spec)
    assert "data.jsonl:1: field 'level' = 'hard' is not a level number" in message


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError, match=r"dataset file not found: .*nope\.jsonl \(dataset 'd', data_root "):
        load_problem_set(DatasetSpec(path="nope.jsonl"), tmp_path, "d")


def test_unreadable_parquet_and_unknown_suffix(tmp_path):
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(DatasetError, match=r"bad\.parquet: not a readable Parquet file"):
        load_problem_set(DatasetSpec(path="bad.parquet"), tmp_path, "d")
    (tmp_path / "data.csv").write_text("question,answer\n")
    with pytest.raises(DatasetError, match=r"cannot tell the format of .*data\.csv"):
        load_problem_set(DatasetSpec(path="data.csv"), tmp_path, "d")


def test_unknown_dataset_name_suggests_a_close_one(tmp_path):
    config = Config(data_root=str(tmp_path), datasets={"math500": DatasetSpec(path="m.jsonl")})
    with pytest.raises(DatasetError, match=r"unknown dataset 'math50' \(known: math500\); did you mean 'math500'\?"):
        load_named(config, "math50")


def test_load_named_reads_under_the_config_data_root(tmp_path):
    write_jsonl(tmp_path / "math.jsonl", MATH_ROWS)
    config = Config(data_root=str(tmp_path), datasets={"mini": MATH_SPEC})
    assert [p.family for p in load_named(config, "mini")] == ["mini", "mini"]
