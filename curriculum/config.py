"""The whole experiment config: YAML -> OmegaConf -> frozen pydantic models.

Each default lives here and only here. Importing this module does not import
torch, Ray or TRL, so the CLI can reject a bad config in milliseconds.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from curriculum.errors import CurriculumError

Extraction = Literal["auto", "boxed", "gsm8k", "answer_colon", "last_number", "none"]


class ConfigError(CurriculumError, ValueError):
    """A config that cannot be used; the message is one line meant for the user."""


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ExperimentConfig(Section):
    name: str = "tiny"
    run_name: str | None = Field(default=None, description="defaults to a timestamp")
    seed: int = 0
    runs_dir: str = "runs"


class TinyModelConfig(Section):
    """Shape of the locally built Qwen2-architecture model."""

    hidden_size: int = Field(default=128, ge=8)
    num_layers: int = Field(default=4, ge=1)
    num_heads: int = Field(default=4, ge=1)
    num_kv_heads: int = Field(default=2, ge=1)
    intermediate_size: int = Field(default=384, ge=8)
    max_position_embeddings: int = Field(default=512, ge=32)

    @model_validator(mode="after")
    def _heads_divide(self) -> "TinyModelConfig":
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size={self.hidden_size} must be divisible by num_heads={self.num_heads}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads={self.num_heads} must be divisible by num_kv_heads={self.num_kv_heads}")
        return self


class LoraConfig(Section):
    r: int = Field(default=16, ge=1)
    alpha: int = Field(default=32, ge=1)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )


class ModelConfig(Section):
    """`kind: tiny` builds the toy model locally; `kind: hf` loads `path` (local folder or hub id)."""

    kind: Literal["tiny", "hf"] = "tiny"
    path: str | None = None
    tiny: TinyModelConfig = TinyModelConfig()
    lora: LoraConfig = LoraConfig()
    cache_dir: str = ".cache/curriculum"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"

    @model_validator(mode="after")
    def _hf_needs_path(self) -> "ModelConfig":
        if self.kind == "hf" and not self.path:
            raise ValueError("model.kind=hf needs model.path (a local folder or a hub id)")
        return self


class WorldConfig(Section):
    """The built-in arithmetic world."""

    name: Literal["arithmetic"] = "arithmetic"
    families: list[str] = Field(
        default_factory=lambda: ["add", "sub", "mul", "sum", "linear", "word"], min_length=1
    )
    max_level: int = Field(default=5, ge=1, le=9)
    heldout_per_level: int = Field(default=20, ge=1, description="held-out problems per family and level")
    seed_set_size: int = Field(default=100, ge=1)


class PretrainConfig(Section):
    """SFT of the toy base model on the easy levels only."""

    levels: list[int] = Field(default_factory=lambda: [1, 2], min_length=1)
    examples: int = Field(default=20000, ge=1, description="training examples, spread over families and levels")
    epochs: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=64, ge=1)
    learning_rate: float = Field(default=3e-3, gt=0)
    warmup_ratio: float = Field(default=0.05, ge=0, lt=1)


class SolverConfig(Section):
    attempts: int = Field(default=8, ge=1, description="attempts sampled per problem (k)")
    temperature: float = Field(default=1.0, gt=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    max_new_tokens: int = Field(default=192, ge=1)
    batch_size: int = Field(default=256, ge=1, description="prompts per generate() call")


class EvaluationConfig(Section):
    max_new_tokens: int = Field(default=192, ge=1)
    batch_size: int = Field(default=256, ge=1)


class DatasetSpec(Section):
    """How to read one problem set: where it is and which fields hold what."""

    path: str = Field(description="a .jsonl or .parquet file, or a Hugging Face dataset name when format=hf")
    format: Literal["auto", "jsonl", "parquet", "hf"] = "auto"
    split: str = "test"
    question_field: str = "question"
    answer_field: str = "answer"
    extraction: Extraction = Field(
        default="none", description="how to pull the final answer out of answer_field"
    )
    completion_extraction: Extraction = Field(default="auto", description="how to read a model's answer")
    solution_field: str | None = Field(default=None, description="a worked reference solution, if any")
    subject_field: str | None = None
    level_field: str | None = None
    id_field: str | None = None


class Config(Section):
    experiment: ExperimentConfig = ExperimentConfig()
    model: ModelConfig = ModelConfig()
    world: WorldConfig = WorldConfig()
    pretrain: PretrainConfig = PretrainConfig()
    solver: SolverConfig = SolverConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    data_root: str = Field(default="../shared/data/benchmarks", description="relative dataset paths start here")
    datasets: dict[str, DatasetSpec] = Field(default_factory=dict)


# ----------------------------------------------------------------------------- loading


def _valid_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for name, field in model.model_fields.items():
        dotted = f"{prefix}{name}"
        keys.append(dotted)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(_valid_keys(annotation, dotted + "."))
    return keys


def _suggest(key: str, model: type[BaseModel]) -> str:
    candidates = _valid_keys(model)
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    if not close:  # compare the last segment among siblings
        parent, _, leaf = key.rpartition(".")
        siblings = [c for c in candidates if c.rpartition(".")[0] == parent]
        leaves = difflib.get_close_matches(leaf, [s.rpartition(".")[2] for s in siblings], n=1, cutoff=0.5)
        close = [f"{parent}.{leaves[0]}" if parent else leaves[0]] if leaves else []
    return f" (did you mean '{close[0]}'?)" if close else ""


def _format_error(err: dict[str, Any], data: dict[str, Any], source: str) -> str:
    loc = [str(part) for part in err["loc"]]
    key = ".".join(loc)
    if err["type"] == "extra_forbidden":
        return f"unknown config key '{key}'{_suggest(key, Config)} in {source}"
    if err["type"] == "missing":
        return f"missing config key '{key}' in {source}"
    value: Any = data
    for part in err["loc"]:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            value = None
            break
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    where = f"config key '{key}'" if key else "config"
    shown = f" = {value!r}" if key else ""
    return f"invalid {where}{shown} in {source}: {msg}"


def from_dict(data: dict[str, Any], source: str = "<dict>") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc.errors()[0], data, source)) from None


def _load_yaml(path: Path, seen: tuple[Path, ...] = ()) -> Any:
    """Load one YAML file, first merging the files its `include:` list names (relative to it)."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.resolve() in seen:
        raise ConfigError(f"config include cycle at {path}")
    try:
        node = OmegaConf.load(path)
    except Exception as exc:  # noqa: BLE001 - yaml scanner/parser errors have no common base
        raise ConfigError(f"cannot parse {path}: {' '.join(str(exc).split())}") from None
    if not OmegaConf.is_dict(node) or "include" not in node:
        return node
    includes = node.pop("include")
    if isinstance(includes, str):
        includes = [includes]
    merged = OmegaConf.create({})
    for name in includes:
        merged = OmegaConf.merge(merged, _load_yaml(path.parent / str(name), seen + (path.resolve(),)))
    return OmegaConf.merge(merged, node)


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML recipe (and its includes), apply `key=value` overrides, and validate."""
    path = Path(path)
    base = _load_yaml(path)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key=value")
    if not OmegaConf.is_dict(base):
        raise ConfigError(f"{path} must hold a mapping of config sections, not {type(base._content).__name__}")
    try:
        merged = OmegaConf.merge(base, OmegaConf.from_dotlist(list(overrides)))
        data = OmegaConf.to_container(merged, resolve=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"bad override or interpolation in {path}: {str(exc).splitlines()[0]}") from None
    source = str(path) + (" with overrides" if overrides else "")
    return from_dict(data, source)


def to_yaml(config: Config) -> str:
    return OmegaConf.to_yaml(OmegaConf.create(config.model_dump(mode="json")))


def flatten(config: Config) -> dict[str, Any]:
    """Dotted keys -> values, for MLflow params."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            out[prefix] = value

    walk("", config.model_dump(mode="json"))
    return out
