"""Problem sets read from files: benchmarks for evaluation and seed pools for real runs.

A `DatasetSpec` (configs/benchmarks.yaml) names the file and which fields hold the
question, the answer, the subject and the level; the loader maps each record to a
`Problem` with `source="dataset"`. Formats: JSON Lines, Parquet, and Hugging Face
datasets (a folder written by `save_to_disk`, a local data folder or file, or a hub
name). Every error is one line that names the file and the line (or row).
"""

from __future__ import annotations

import difflib
import json
import re
import string
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from curriculum.config import Config, DatasetSpec, Extraction
from curriculum.errors import CurriculumError
from curriculum.records import Problem
from curriculum.verify import clean_answer, extract_answer, solution_in_format
from curriculum.worlds.prompt_limit import PromptLimit

_SUFFIX_FORMATS = {".jsonl": "jsonl", ".parquet": "parquet"}
_HF_SAVED_MARKERS = ("dataset_dict.json", "state.json")  # what `save_to_disk` writes


class DatasetError(CurriculumError, ValueError):
    """A problem set that cannot be read; the message names the file and line."""


class NoAnswerError(DatasetError):
    """A record whose answer field holds no answer by the dataset's extraction rule (a word where the
    rule reads numbers, an empty field): refused, or skipped and counted when the user asks."""


SKIP_INVALID_HINT = (
    "fix the record, or leave such records out with world.skip_invalid=true (curriculum eval: --skip-invalid)"
)


def load_problem_set(
    spec: DatasetSpec,
    data_root: str | Path,
    name: str,
    limit: PromptLimit | None = None,
    skipped: list[str] | None = None,
    answer_format: Extraction | None = None,
    invalid: list[str] | None = None,
) -> list[Problem]:
    """All problems in the dataset `spec` describes; relative paths start at `data_root`.

    With `limit`, a problem whose prompt would not fit the model is refused with its file and
    line, or, when a `skipped` list is given, left out and "<file>:<line>: <why>" appended to it.
    With `answer_format` (the extraction rule a world reads answers with), reference solutions
    are rewritten to end in an answer that rule reads (`verify.solution_in_format`): what the
    learners train on is what the grader marks right. A record with no answer by the extraction
    rule is refused with its file and line, or, when an `invalid` list is given, left out and
    "<file>:<line>: <why>" appended to it.
    """
    source, fmt = _resolve(spec, Path(data_root), name)
    if fmt == "jsonl":
        records = _read_jsonl(source)
    elif fmt == "parquet":
        records = _read_parquet(source)
    else:
        records = _read_hf(source, spec.split)
    problems, too_long, no_answer = [], 0, 0
    for where, record in records:
        try:
            problem = _to_problem(record, where, spec, name, answer_format)
        except NoAnswerError as exc:
            if invalid is None:
                raise
            invalid.append(str(exc).removesuffix(f"; {SKIP_INVALID_HINT}"))
            no_answer += 1
            continue
        excess = limit.excess(problem.question) if limit is not None else None
        if excess is None:
            problems.append(problem)
        elif skipped is None:
            assert limit is not None  # only a limit finds an excess
            hint = f"; shorten it, or {limit.skip_hint}" if limit.skip_hint else ""
            raise DatasetError(f"{where}: {excess}{hint}")
        else:
            skipped.append(f"{where}: {excess}")
            too_long += 1
    if not problems:
        what = (
            "every record's prompt is too long for the model or has no answer"
            if too_long and no_answer
            else "every record's prompt is too long for the model"
            if too_long
            else f"no record has an answer by extraction '{spec.extraction}'"
            if no_answer
            else "no records"
        )
        raise DatasetError(f"{source} is empty: {what} (dataset '{name}')")
    return problems


def load_named(
    config: Config,
    name: str,
    limit: PromptLimit | None = None,
    skipped: list[str] | None = None,
    answer_format: Extraction | None = None,
    invalid: list[str] | None = None,
) -> list[Problem]:
    """The problem set `name` from `config.datasets`, read under `config.data_root` (`limit`,
    `skipped`, `answer_format`, `invalid`: see `load_problem_set`)."""
    if name not in config.datasets:
        known = sorted(config.datasets)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise DatasetError(f"unknown dataset '{name}' (known: {', '.join(known) or 'none'}){hint}")
    return load_problem_set(config.datasets[name], config.data_root, name, limit, skipped, answer_format, invalid)


# ----------------------------------------------------------------------------- locating


def _resolve(spec: DatasetSpec, data_root: Path, name: str) -> tuple[str, str]:
    """(where to read, format). Hub names for format=hf pass through when no such local path exists."""
    path = Path(spec.path).expanduser()
    local = path if path.is_absolute() else data_root / path
    fmt: str = spec.format
    if fmt == "hf":
        return (str(local), fmt) if local.exists() else (spec.path, fmt)
    if not local.exists():
        raise DatasetError(f"dataset file not found: {local} (dataset '{name}', data_root {data_root})")
    if fmt == "auto":
        if local.is_dir():
            fmt = "hf"
        elif local.suffix.lower() in _SUFFIX_FORMATS:
            fmt = _SUFFIX_FORMATS[local.suffix.lower()]
        else:
            raise DatasetError(
                f"cannot tell the format of {local} (dataset '{name}'): expected a .jsonl or .parquet file "
                "or a folder; set format: jsonl, parquet or hf"
            )
    elif local.is_dir():
        raise DatasetError(f"{local} is a folder, not a {fmt} file (dataset '{name}'); use format: hf for a folder")
    return str(local), fmt


# ----------------------------------------------------------------------------- readers


def _read_jsonl(path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            where = f"{path}:{number}"
            if b"\x00" in raw:
                raise DatasetError(f"{where}: binary data, not JSON Lines text")
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise DatasetError(f"{where}: not UTF-8 text (a binary file?)") from None
            if not line:
                continue
            if line.startswith("["):
                raise DatasetError(f"{where}: a JSON array, but the file must be JSON Lines (one JSON object per line)")
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(record, dict):
                raise DatasetError(f"{where}: expected a JSON object, got {type(record).__name__}")
            yield where, record


def _read_parquet(path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DatasetError(f"{path}: not a readable Parquet file ({_one_line(exc)})") from None
    for number, record in enumerate(table.to_pylist(), start=1):
        yield f"{path} row {number}", record


def _read_hf(source: str, split: str) -> Iterator[tuple[str, dict[str, Any]]]:
    import datasets

    bars_were_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        dataset = _open_hf(source, split, datasets)
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()
    for number, record in enumerate(dataset, start=1):
        yield f"{source} split {split} row {number}", record


def _open_hf(source: str, split: str, datasets: Any) -> list[dict[str, Any]]:
    local = Path(source)
    try:
        if local.is_dir() and any((local / marker).exists() for marker in _HF_SAVED_MARKERS):
            saved = datasets.load_from_disk(str(local))
            if isinstance(saved, datasets.DatasetDict):
                if split not in saved:
                    raise DatasetError(f"{source} has no split '{split}' (splits: {', '.join(saved)})")
                saved = saved[split]
            return saved.to_list()
        if local.exists():
            # Build the Arrow cache in a temporary folder: reading a local dataset writes nothing.
            with tempfile.TemporaryDirectory(prefix="curriculum-hf-") as cache:
                if local.is_file():
                    builder = "parquet" if local.suffix.lower() == ".parquet" else "json"
                    dataset = datasets.load_dataset(
                        builder, data_files={split: str(local)}, split=split, cache_dir=cache
                    )
                else:
                    dataset = datasets.load_dataset(str(local), split=split, cache_dir=cache)
                return dataset.to_list()
        return datasets.load_dataset(source, split=split).to_list()
    except DatasetError:
        raise
    except Exception as exc:  # noqa: BLE001 - datasets raises many unrelated types for unreadable input
        raise DatasetError(f"{source} split {split}: cannot load with datasets ({_one_line(exc)})") from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:200] + "...") if len(text) > 200 else (text or type(exc).__name__)


# ----------------------------------------------------------------------------- records


def _field(record: dict[str, Any], field: str, where: str) -> Any:
    if field not in record:
        fields = ", ".join(sorted(map(str, record))) or "none"
        raise DatasetError(f"{where}: missing field '{field}' (fields: {fields})")
    return record[field]


def _answer_text(value: Any, field: str, where: str) -> str:
    """The answer field as one string: numbers without a spurious `.0`, lists joined by commas."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        raise NoAnswerError(f"{where}: field '{field}' is {value!r}, not an answer; {SKIP_INVALID_HINT}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (list, tuple)):
        # olympiadbench: ["$69$,$84$"] or ["$(1,8,19), (2,7,13)$"]; several entries are several answers.
        parts = [clean_answer(_answer_text(item, field, where)) for item in value]
        parts = [part for part in parts if part]
        if not parts:
            raise DatasetError(f"{where}: field '{field}' is an empty list")
        return ", ".join(parts)
    raise DatasetError(f"{where}: field '{field}' is a {type(value).__name__}, not an answer")


def _solution_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):  # olympiadbench keeps several solutions; the first is the reference
        return next((item for item in value if isinstance(item, str) and item.strip()), "")
    return ""


def _level(value: Any, field: str, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(?:level\s*)?(\d+)\s*", value, re.IGNORECASE)  # MATH writes "Level 3"
        if match:
            return int(match.group(1))
    raise DatasetError(f"{where}: field '{field}' = {value!r} is not a level number")


def question_fields(template: str) -> list[str]:
    """The fields a question template names: '{Body} {Question}' -> [Body, Question]; a plain
    field name (no braces) is itself."""
    if "{" not in template:
        return [template]
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise DatasetError(f"question_field template '{template}': {exc}") from None


def _question(record: dict[str, Any], template: str, where: str) -> str:
    """The question text: one field, or a template of several filled from the record."""
    values = {}
    for name in question_fields(template):
        value = _field(record, name, where)
        if not isinstance(value, str) or not value.strip():
            raise DatasetError(f"{where}: field '{name}' must be a non-empty string, got {value!r:.60}")
        values[name] = value
    if "{" not in template:
        return values[template]
    return template.format(**{name: value.strip() for name, value in values.items()})


def _to_problem(
    record: dict[str, Any], where: str, spec: DatasetSpec, name: str, answer_format: Extraction | None = None
) -> Problem:
    question = _question(record, spec.question_field, where)
    answer_text = _answer_text(_field(record, spec.answer_field, where), spec.answer_field, where)
    answer = extract_answer(answer_text, spec.extraction)
    if answer is None:
        raise NoAnswerError(
            f"{where}: no answer in field '{spec.answer_field}' by extraction '{spec.extraction}' "
            f"(it holds {answer_text!r:.60}); {SKIP_INVALID_HINT}"
        )
    if spec.solution_field:
        solution = _solution_text(record.get(spec.solution_field))
    elif spec.extraction != "none":
        solution = answer_text  # the answer field is a worked solution (gsm8k, minerva_math)
    else:
        solution = ""
    if solution and answer_format is not None:
        solution = solution_in_format(solution, answer, answer_format, spec.extraction)
    level = _level(_field(record, spec.level_field, where), spec.level_field, where) if spec.level_field else None
    concepts: list[str] = []
    if spec.subject_field:
        subject = _field(record, spec.subject_field, where)
        if subject is not None and str(subject).strip():
            concepts = [str(subject).strip()]
    return Problem(
        question=question,
        answer=answer,
        solution=solution,
        source="dataset",
        family=name,
        level=level,
        concepts=concepts,
        answer_source="dataset",
    )
