"""`curriculum eval`: a base model, a run's policy version or an adapter on a benchmark.

Each problem gets `samples` completions (greedy when one sample, unless a temperature is
given); the verifier grades each against the reference answer. Questions are asked and answers
read in the config's answer format (`world.answer_instruction`, `world.answer_extraction`), the
one rule the loop and its held-out evaluation use, so a run's accuracy here and in its rounds
agree; `--also-extraction RULE` reports pass@k by other rules beside it, labelled by rule
(`other_extractions`). The report holds pass@1
(the mean share of correct samples), the unbiased pass@k, mean tokens per completion,
and the same per subject and per level where the data has them. It is written as a
JSON file and, for a run, logged to the run's MLflow run (step = policy version).

Why one module of ~450 lines: it is one command read top to bottom (which model, which data,
sampling, grading, scoring, where the report goes); its parts are used nowhere else, and pass@k
and the Verifier are already apart (passk.py, verify/).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from curriculum.config import DatasetSpec, load_config
from curriculum.engines import make_engine
from curriculum.errors import CurriculumError
from curriculum.files import atomic_write_json
from curriculum.models import context_length, load_tokenizer, prompt_for
from curriculum.records import Problem
from curriculum.report.passk import mean_pass_at_k
from curriculum.rundir import RunLayout, is_run_dir
from curriculum.training.pretrain import base_model_dir
from curriculum.verify import Verifier
from curriculum.worlds.loading import load_problem_set
from curriculum.worlds.prompt_limit import PromptLimit

MAX_SKIPPED_SHOWN = 20  # skipped lines named in the report (all are counted)


class EvalError(CurriculumError):
    """`curriculum eval` cannot do what was asked; one line that says how to fix it."""


# ----------------------------------------------------------------------------- what to evaluate


@dataclass(frozen=True)
class ModelTarget:
    """A base model, optionally with a LoRA adapter merged in; from a run when `run_dir` is set."""

    base: str
    adapter: str | None = None
    run_dir: Path | None = None
    policy_version: int | None = None

    @property
    def label(self) -> str:
        if self.run_dir is not None:
            return f"{self.run_dir.name}-v{self.policy_version:04d}"
        return Path(self.adapter or self.base).name or "model"

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "adapter": self.adapter,
            "run_dir": None if self.run_dir is None else str(self.run_dir),
            "policy_version": self.policy_version,
        }


def latest_policy_version(run_dir: Path) -> int:
    """The version in checkpoints/LATEST.json, else the newest policy folder, else 0 (the base model)."""
    layout = RunLayout(run_dir)
    latest = layout.latest
    if latest.is_file():
        try:
            return int(json.loads(latest.read_text())["policy_version"])
        except (ValueError, KeyError, TypeError):
            raise EvalError(f"{latest} is not a checkpoint record (no integer policy_version)") from None
    versions = [
        int(m.group(1))
        for p in layout.checkpoints.glob("policy_v*")
        if (m := re.fullmatch(r"policy_v(\d+)", p.name)) and (p / "adapter_config.json").is_file()
    ]
    return max(versions, default=0)


def run_base_model(run_dir: Path) -> str:
    """The base model a run trained from: results.json says so once it ends, its config before."""
    results = RunLayout(run_dir).results
    if results.is_file():
        base = json.loads(results.read_text()).get("base_model")
        if base:
            return str(base)

    config = load_config(RunLayout(run_dir).config)
    if config.model.kind == "hf":
        return str(config.model.path)
    return str(base_model_dir(config))


def resolve_target(target: str, policy_version: int | None = None, base: str | None = None) -> ModelTarget:
    """MODEL_OR_RUN as the user wrote it: a run directory, an adapter folder, or a base model."""
    path = Path(target)
    if is_run_dir(path):
        version = latest_policy_version(path) if policy_version is None else policy_version
        base_model = base or run_base_model(path)
        if version == 0:
            return ModelTarget(base_model, None, path, 0)
        adapter = RunLayout(path).policy(version)
        if not (adapter / "adapter_config.json").is_file():
            raise EvalError(f"run {path} has no policy version {version} (no adapter at {adapter})")
        return ModelTarget(base_model, str(adapter), path, version)
    if policy_version is not None:
        raise EvalError(f"--policy-version needs a run directory; {target} is not one (no config.yaml)")
    if (path / "adapter_config.json").is_file():
        if base is None:
            base = json.loads((path / "adapter_config.json").read_text()).get("base_model_name_or_path")
        if not base:
            raise EvalError(f"adapter {path} does not name its base model; pass --base MODEL")
        return ModelTarget(str(base), str(path))
    return ModelTarget(base or target)


# ----------------------------------------------------------------------------- running it


@dataclass(frozen=True)
class ItemResult:
    problem_id: str
    subject: str | None
    level: int | None
    reference: str
    correct: int
    samples: int
    tokens: int
    extracted: list[str | None]
    completions: list[str]
    also_correct: dict[str, int] = field(default_factory=dict)  # correct samples by each other rule


@dataclass
class BenchmarkResult:
    items: list[ItemResult] = field(default_factory=list)

    def scores(self, ks: Sequence[int], items: Sequence[ItemResult] | None = None) -> dict[str, float]:
        """pass@k for each k, and mean tokens per completion, over `items` (default all)."""
        items = self.items if items is None else items
        counts = [(item.samples, item.correct) for item in items]
        out: dict[str, float] = {"problems": len(items)}
        out.update({f"pass@{k}": mean_pass_at_k(counts, k) for k in ks})
        samples = sum(item.samples for item in items)
        out["mean_tokens"] = sum(item.tokens for item in items) / samples if samples else 0.0
        return out

    def by_rule(self, rule: str) -> BenchmarkResult:
        """The same completions graded by another extraction rule (one of `evaluate_benchmark`'s `also`)."""
        return BenchmarkResult([replace(item, correct=item.also_correct[rule]) for item in self.items])

    def breakdown(self, ks: Sequence[int], key: str) -> dict[str, dict[str, float]]:
        """Scores per subject or per level ({} when no problem has one)."""
        groups: dict[Any, list[ItemResult]] = {}
        for item in self.items:
            value = getattr(item, key)
            if value is not None:
                groups.setdefault(value, []).append(item)
        return {str(value): self.scores(ks, group) for value, group in sorted(groups.items())}


def evaluate_benchmark(
    engine: Any,
    problems: Sequence[Problem],
    verifier: Any,
    rule: str,
    samples: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    instruction: str = "",
    batch_size: int | None = None,
    seed: int = 0,
    progress: bool = False,
    also: Sequence[str] = (),
) -> BenchmarkResult:
    """`samples` completions per problem, graded with the extraction `rule` (and counted by each rule
    in `also` beside it)."""

    if not problems:
        raise EvalError("the dataset has no problems to evaluate")
    prompts = [prompt_for(problem.question, engine.tokenizer, instruction) for problem in problems]
    outputs = engine.generate(
        prompts,
        n=samples,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        seed=seed,
        batch_size=batch_size,
        progress=progress,
    )
    texts = [g.text for per_problem in outputs for g in per_problem]
    references = [p.answer for p in problems for _ in range(samples)]
    grades = verifier.grade_many(texts, references, rule)
    others = {other: verifier.grade_many(texts, references, other) for other in also if other != rule}
    result = BenchmarkResult()
    for i, (problem, per_problem) in enumerate(zip(problems, outputs, strict=True)):
        mine = grades[i * samples : (i + 1) * samples]
        also_correct = {
            other: sum(bool(g.correct) for g in graded[i * samples : (i + 1) * samples])
            for other, graded in others.items()
        }
        result.items.append(
            ItemResult(
                problem_id=problem.id,
                subject=problem.concepts[0] if problem.concepts else None,
                level=problem.level,
                reference=problem.answer,
                correct=sum(bool(g.correct) for g in mine),
                samples=samples,
                tokens=sum(g.num_tokens for g in per_problem),
                extracted=[None if g.extracted is None else str(g.extracted) for g in mine],
                completions=[g.text for g in per_problem],
                also_correct=also_correct,
            )
        )
    return result


def ks_for(k: int) -> list[int]:
    return [1] if k == 1 else [1, k]


def report(
    result: BenchmarkResult,
    k: int,
    target: ModelTarget,
    dataset: str,
    source: str,
    settings: dict[str, Any],
    seconds: float,
) -> dict[str, Any]:
    ks = ks_for(k)
    others = sorted(result.items[0].also_correct) if result.items else []
    return {
        "model": target.to_dict(),
        "dataset": {"name": dataset, "source": source, "rows": len(result.items)},
        "settings": settings,
        **result.scores(ks),
        "other_extractions": {rule: result.by_rule(rule).scores(ks) for rule in others},
        "by_subject": result.breakdown(ks, "subject"),
        "by_level": result.breakdown(ks, "level"),
        "seconds": seconds,
        "items": [item.__dict__ for item in result.items],
    }


def mlflow_metrics(summary: dict[str, Any], dataset: str, k: int) -> dict[str, float]:
    """Flat names MLflow accepts (no '@'): bench/<dataset>/pass_at_<k>, .../mean_tokens, and by another
    extraction rule bench/<dataset>/extraction_<rule>/pass_at_<k>."""
    out = {f"bench/{dataset}/pass_at_{kk}": summary[f"pass@{kk}"] for kk in ks_for(k)}
    out[f"bench/{dataset}/mean_tokens"] = summary["mean_tokens"]
    for rule, scores in summary.get("other_extractions", {}).items():  # labelled: never the headline number
        out.update({f"bench/{dataset}/extraction_{rule}/pass_at_{kk}": scores[f"pass@{kk}"] for kk in ks_for(k)})
    return out


def log_to_run(run_dir: Path, metrics: dict[str, float], step: int, artifact: Path | None = None) -> str | None:
    """Log to the MLflow run recorded in run_dir/mlflow.json; the run id, or None without one."""
    record = RunLayout(run_dir).mlflow
    if not record.is_file():
        return None
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    tracking = json.loads(record.read_text())
    client = MlflowClient(tracking_uri=tracking["tracking_uri"])
    now = int(time.time() * 1000)
    client.log_batch(tracking["run_id"], metrics=[Metric(k, float(v), now, step) for k, v in sorted(metrics.items())])
    if artifact is not None:
        client.log_artifact(tracking["run_id"], str(artifact), "eval")
    return tracking["run_id"]


def default_output(target: ModelTarget, dataset: str, k: int, limit: int | None, runs_dir: str) -> Path:
    name = dataset + (f"-pass{k}" if k > 1 else "") + (f"-limit{limit}" if limit else "") + ".json"
    if target.run_dir is not None:
        return RunLayout(target.run_dir).evaluation(target.policy_version or 0) / name
    return Path(runs_dir) / "eval" / target.label / name


# ----------------------------------------------------------------------------- the command


def resolve_dataset(config: Any, name_or_path: str, fields: dict[str, Any] | None = None) -> tuple[str, Any]:
    """(name, DatasetSpec): a dataset named in config, or a file with the field mapping in `fields`.

    `fields` (e.g. question_field, extraction) override the spec's mapping in both cases.
    """
    from pydantic import ValidationError

    fields = {key: value for key, value in (fields or {}).items() if value is not None}
    if name_or_path in config.datasets:
        name, data = name_or_path, config.datasets[name_or_path].model_dump()
    elif Path(name_or_path).expanduser().exists():
        path = Path(name_or_path).expanduser().resolve()
        name, data = path.stem if path.is_file() else path.name, {"path": str(path)}
    else:
        known = ", ".join(sorted(config.datasets)) or "none"
        raise EvalError(
            f"--dataset '{name_or_path}' is neither a dataset in the config (known: {known}) nor an existing file"
        )
    try:
        return name, DatasetSpec.model_validate({**data, **fields})
    except ValidationError as exc:
        error = exc.errors()[0]
        raise EvalError(f"dataset '{name}': {'.'.join(map(str, error['loc']))}: {error['msg']}") from None


def run_eval(
    config: Any,
    target: ModelTarget,
    dataset: str,
    k: int = 1,
    samples: int | None = None,
    temperature: float | None = None,
    limit: int | None = None,
    max_new_tokens: int | None = None,
    fields: dict[str, Any] | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    progress: bool = False,
    skip_oversized: bool = False,
    also_extractions: Sequence[str] = (),
    engine: Any = None,
    skip_invalid: bool = False,
) -> tuple[dict[str, Any], Path]:
    """Evaluate `target` on `dataset`; write the JSON report; log to MLflow for a run. (report, its path)

    A problem whose prompt would not fit the model (its context less the new tokens, or
    `model.max_prompt_tokens`) is refused with its file and line before the model is loaded, or
    with `skip_oversized` left out and counted in the report (`skipped_oversized`); a record with
    no answer by the dataset's extraction rule likewise, with `skip_invalid` (`skipped_invalid`).
    `engine`: one already holding `target` to sample with (the caller closes it); default: the
    engine of `solver.engine`, loaded here.
    """
    import tempfile

    import torch

    samples = k if samples is None else samples
    if k < 1 or samples < k:
        raise EvalError(f"--k {k} needs at least k samples per problem (--samples {samples}) and k >= 1")
    if limit is not None and limit < 1:
        raise EvalError(f"--limit must be >= 1, got {limit}")
    cfg = config.evaluation
    if temperature is None:  # one sample: the greedy answer; several: sampled
        temperature = 0.0 if samples == 1 else cfg.temperature
    if samples > 1 and temperature == 0:
        raise EvalError(
            f"--samples {samples} with temperature 0 gives {samples} copies of the greedy answer; "
            "set --temperature above 0"
        )
    name, spec = resolve_dataset(config, dataset, fields)
    rule, instruction = config.world.answer_extraction, config.world.answer_instruction  # the loop's format
    max_new_tokens = max_new_tokens or cfg.max_new_tokens
    prompt_limit = PromptLimit.for_model(
        load_tokenizer(target.base),
        context_length(target.base),
        max_new_tokens,
        instruction,
        config.model.max_prompt_tokens,
        skip_hint="pass --skip-oversized to leave such problems out",
    )
    skipped: list[str] | None = [] if skip_oversized else None
    invalid: list[str] | None = [] if skip_invalid else None
    problems = load_problem_set(spec, config.data_root, name, prompt_limit, skipped, invalid=invalid)[:limit]
    device = "cuda" if torch.cuda.is_available() else "cpu"  # a command of its own: the machine's GPU if any
    also = [other for other in dict.fromkeys(also_extractions) if other != rule]
    with tempfile.TemporaryDirectory(prefix="curriculum-eval-") as engine_dir:  # the engine's own files (vLLM)
        own_engine = engine is None
        if own_engine:
            engine = make_engine(
                config,
                target.base,
                engine_dir,
                device=device,
                adapter=target.adapter,
                version=target.policy_version or 0,
            )
        settings = {
            "samples": samples,
            "k": k,
            "temperature": temperature,
            "top_p": cfg.top_p if temperature else 1.0,
            "max_new_tokens": max_new_tokens,
            "seed": seed,
            "limit": limit,
            "instruction": instruction,
            "extraction": rule,
            "also_extractions": also,
            "engine": config.solver.engine,
            "chat_template": bool(getattr(engine.tokenizer, "chat_template", None)),
        }
        start = time.perf_counter()
        try:
            with Verifier(config.verifier.timeout_s) as verifier:
                result = evaluate_benchmark(
                    engine,
                    problems,
                    verifier,
                    rule,
                    samples,
                    temperature,
                    settings["top_p"],
                    settings["max_new_tokens"],
                    instruction,
                    cfg.batch_size,
                    seed,
                    progress,
                    also=also,
                )
        finally:
            if own_engine:
                engine.close()
    summary = report(result, k, target, name, str(spec.path), settings, time.perf_counter() - start)
    if skipped is not None:
        summary["skipped_oversized"] = {"count": len(skipped), "lines": skipped[:MAX_SKIPPED_SHOWN]}
    if invalid is not None:
        summary["skipped_invalid"] = {"count": len(invalid), "lines": invalid[:MAX_SKIPPED_SHOWN]}
    path = Path(out) if out else default_output(target, name, k, limit, config.experiment.runs_dir)
    atomic_write_json(path, summary)
    if target.run_dir is not None:
        summary["mlflow_run_id"] = log_to_run(
            target.run_dir, mlflow_metrics(summary, name, k), step=target.policy_version or 0, artifact=path
        )
    return summary, path
