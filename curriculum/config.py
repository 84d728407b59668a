"""The whole experiment config: YAML -> OmegaConf -> frozen pydantic models.

Each default lives here and only here. Importing this module does not import
torch, Ray or TRL, so the CLI can reject a bad config in milliseconds.
"""

from __future__ import annotations

import difflib
import math
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from curriculum.errors import CurriculumError

Extraction = Literal["auto", "boxed", "gsm8k", "answer_colon", "last_number", "none"]
# What real models are asked to do with their final answer (the papers' evaluation prompt).
BOXED_INSTRUCTION = "\nPlease reason step by step, and put your final answer within \\boxed{}."


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
    def _heads_divide(self) -> TinyModelConfig:
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
    """`kind: tiny` builds the toy model locally; `kind: hf` loads `path` (local folder or hub id) as it is."""

    kind: Literal["tiny", "hf"] = "tiny"
    path: str | None = None
    tiny: TinyModelConfig = TinyModelConfig()
    lora: LoraConfig = LoraConfig()
    cache_dir: str = ".cache/curriculum"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description="auto: bfloat16 on a GPU that supports it, float32 on CPU"
    )
    max_prompt_tokens: int | None = Field(
        default=None,
        ge=1,
        description="problems whose prompt has more tokens are refused when their data is "
        "read; default: what the model's context leaves beside the new tokens",
    )

    @model_validator(mode="after")
    def _hf_needs_path(self) -> ModelConfig:
        if self.kind == "hf" and not self.path:
            raise ValueError("model.kind=hf needs model.path (a local folder or a hub id)")
        return self


class WorldConfig(Section):
    """Where problems and reference answers come from (curriculum/worlds/).

    `arithmetic`: the built-in world with an exact oracle and mutation operators (what the
    symbolic Teacher, SwS synthesis and the Generator need). `dataset`: real problem sets, seeds
    from `seed_sets` and held-out subsets of `heldout_sets`, all named in `datasets`.
    """

    name: Literal["arithmetic", "dataset"] = "arithmetic"
    seed_set_size: int = Field(default=100, ge=1, description="seed problems chosen in round 0")
    # How a model is asked to answer and how its answer is read, by the loop, its held-out evaluation
    # and `curriculum eval` alike: answer_colon (`answer: N`, the toy model's trace) on arithmetic,
    # boxed (\boxed{}) with BOXED_INSTRUCTION on dataset.
    extraction: Extraction | None = Field(
        default=None, description="default: answer_colon (arithmetic), boxed (dataset)"
    )
    instruction: str | None = Field(
        default=None,
        description="appended to every question before the chat "
        "template; default: BOXED_INSTRUCTION when answers are read from "
        "\\boxed{}, else none",
    )
    # arithmetic
    families: list[str] = Field(default_factory=lambda: ["add", "sub", "mul", "sum", "linear", "word"], min_length=1)
    max_level: int = Field(default=5, ge=1, le=9)
    heldout_per_level: int | dict[int, int] = Field(
        default=20,
        description="held-out problems per family and level: one count for every level, or a count per "
        "level ({1: 25, 2: 250, ...})",
    )
    # dataset
    seed_sets: list[str] = Field(
        default_factory=list,
        description="dataset: names in `datasets` whose problems form the seed pool (held-out questions excluded)",
    )
    heldout_sets: list[str] = Field(
        default_factory=list, description="dataset: names in `datasets` of the benchmarks held out for evaluation"
    )
    heldout_size: dict[str, int] = Field(
        default_factory=dict,
        description="dataset: problems drawn from a held-out benchmark by experiment.seed (missing or 0: all of it)",
    )
    skip_oversized: bool = Field(
        default=False,
        description="dataset: leave out (and count, seeds/skipped_"
        "oversized) problems whose prompt does not fit the model, instead of refusing "
        "the data file",
    )
    skip_invalid: bool = Field(
        default=False,
        description="dataset: leave out (and count, data/skipped_invalid) "
        "records whose answer field holds no answer by the dataset's extraction rule (a word "
        "where it reads numbers, an empty field), instead of refusing the data file",
    )
    level_edges: list[float] = Field(
        default_factory=lambda: [0.75, 0.5, 0.25, 0.125],
        description="dataset problems without a level field get level 1 + the number of edges above the base "
        "model's solve rate at screening: 1.0 -> 1, 0.6 -> 2, 0.3 -> 3, 0.2 -> 4, 0 -> 5",
    )

    @model_validator(mode="after")
    def _world_settings(self) -> WorldConfig:
        counts = self.heldout_per_level
        if isinstance(counts, dict):
            missing = [level for level in range(1, self.max_level + 1) if level not in counts]
            if missing:
                raise ValueError(
                    f"world.heldout_per_level has no count for level {missing[0]} (levels 1..{self.max_level} need one)"
                )
        for level, count in counts.items() if isinstance(counts, dict) else [(None, counts)]:
            if count < 1:
                where = "" if level is None else f"[{level}]"
                raise ValueError(f"world.heldout_per_level{where}={count} must be >= 1")
        if self.name == "dataset":
            if not self.seed_sets:
                raise ValueError("world.name=dataset needs world.seed_sets (dataset names, e.g. [gsm8k_train])")
            if not self.heldout_sets:
                raise ValueError("world.name=dataset needs world.heldout_sets (e.g. [gsm8k, math500])")
            for name, size in self.heldout_size.items():
                if size < 0:
                    raise ValueError(f"world.heldout_size.{name}={size} must be >= 0 (0: the whole set)")
        return self

    def heldout_count(self, level: int) -> int:
        """Held-out problems per family at `level` (arithmetic)."""
        counts = self.heldout_per_level
        return counts[level] if isinstance(counts, dict) else counts

    @property
    def answer_extraction(self) -> Extraction:
        """How the Solver's answers are read in this world."""
        if self.extraction is not None:
            return self.extraction
        return "boxed" if self.name == "dataset" else "answer_colon"

    @property
    def answer_instruction(self) -> str:
        """What is appended to each question before the chat template: the request to answer the
        way `answer_extraction` reads."""
        if self.instruction is not None:
            return self.instruction
        return BOXED_INSTRUCTION if self.answer_extraction == "boxed" else ""


class PretrainConfig(Section):
    """SFT of the toy base model on the easy levels only."""

    levels: list[int] = Field(default_factory=lambda: [1, 2], min_length=1)
    level_weights: dict[int, float] = Field(
        default_factory=dict,
        description="relative share of examples per level in `levels` (missing: 1.0); "
        "a small share of a harder level gives the base a weak start there",
    )
    examples: int = Field(default=20000, ge=1, description="training examples, spread over families and levels")
    epochs: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=64, ge=1)
    learning_rate: float = Field(default=3e-3, gt=0)
    warmup_ratio: float = Field(default=0.05, ge=0, lt=1)

    @model_validator(mode="after")
    def _weights_name_levels(self) -> PretrainConfig:
        for level, weight in self.level_weights.items():
            if level not in self.levels:
                raise ValueError(
                    f"pretrain.level_weights names level {level}, which is not in pretrain.levels {self.levels}"
                )
            if weight < 0:
                raise ValueError(f"pretrain.level_weights[{level}]={weight} must be >= 0")
        return self


class VLLMConfig(Section):
    """The vLLM engine (`solver.engine: vllm`, curriculum/engines/vllm.py)."""

    gpu_memory_utilization: float = Field(
        default=0.3,
        gt=0,
        le=1,
        description="share of the GPU vLLM may take (TRL's colocate default); the rest "
        "is left to a Learner sharing the GPU",
    )
    cpu_kv_cache_gib: int = Field(
        default=1,
        ge=1,
        description="GiB of KV cache on CPU (VLLM_CPU_KVCACHE_SPACE); "
        "vLLM's own default reserves ~21 GiB and starts 4x slower",
    )
    cpu_threads_bind: str | None = Field(
        default=None,
        description="CPU cores vLLM's OpenMP threads bind to on CPU (VLLM_CPU_OMP_THREADS_BIND, "
        "e.g. '0-7'); default: every core this process may run on",
    )
    max_model_len: int | None = Field(default=None, ge=16, description="default: the model's context length")
    enforce_eager: bool = Field(
        default=False, description="no CUDA graphs / torch.compile: starts ~20 s faster, samples slower (tests)"
    )
    engine_process: bool = Field(
        default=False,
        description="run vLLM's engine core and worker in processes of "
        "their own (vLLM's default) instead of inside the Solver's",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="ERROR", description="vLLM's own log messages shown (VLLM_LOGGING_LEVEL)"
    )


class SolverConfig(Section):
    attempts: int = Field(default=8, ge=1, description="attempts sampled per problem (k)")
    temperature: float = Field(default=1.0, gt=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    max_new_tokens: int = Field(default=192, ge=1)
    batch_size: int = Field(default=256, ge=1, description="sequences per generate() batch (hf engine)")
    engine: Literal["hf", "vllm"] = Field(
        default="hf",
        description="what samples attempts and runs held-out evaluation: hf (transformers "
        "generate) or vllm (one LLM.generate per round, a LoRA per policy version; "
        "install with `make vllm` on CPU or the gpu extra)",
    )
    vllm: VLLMConfig = VLLMConfig()


class VerifierConfig(Section):
    timeout_s: float = Field(
        default=2.0,
        gt=0,
        description="seconds one grade may take before it counts as wrong; "
        "raise it for long competition answers on a busy machine",
    )


class EvaluationConfig(Section):
    max_new_tokens: int = Field(default=192, ge=1)
    batch_size: int = Field(default=256, ge=1)
    # `curriculum eval` on benchmarks (held-out evaluation in the loop is greedy and ignores these):
    temperature: float = Field(default=0.6, ge=0, description="sampling temperature when samples > 1")
    top_p: float = Field(default=0.95, gt=0, le=1)
    # Questions are asked and answers read in the world's answer format (world.answer_extraction and
    # world.answer_instruction), in the loop and in `curriculum eval` alike.


class DecontaminationConfig(Section):
    """Teacher and Generator problems whose n-grams overlap an evaluation set are rejected."""

    enabled: bool = True
    eval_sets: list[str] = Field(default_factory=list, description="names in `datasets` to check against")
    heldout: bool = Field(default=True, description="also check against the world's held-out problems")
    ngram: int = Field(default=8, ge=1, description="n of the word n-grams compared")
    threshold: float = Field(default=0.5, gt=0, le=1, description="share of a draft's n-grams that makes a match")


class DatasetSpec(Section):
    """How to read one problem set: where it is and which fields hold what."""

    path: str = Field(description="a .jsonl or .parquet file, or a Hugging Face dataset name when format=hf")
    format: Literal["auto", "jsonl", "parquet", "hf"] = "auto"
    split: str = "test"
    question_field: str = Field(
        default="question", description="a field name, or a template of fields such as '{Body} {Question}' (SVAMP)"
    )
    answer_field: str = "answer"
    extraction: Extraction = Field(default="none", description="how to pull the final answer out of answer_field")
    # A model's answer is read by the world's rule (world.answer_extraction), not per data set.
    solution_field: str | None = Field(default=None, description="a worked reference solution, if any")
    subject_field: str | None = None
    level_field: str | None = None


class SelectionConfig(Section):
    """Which problems a round trains on. Band edges are multiples of 1/solver.attempts."""

    seed_band_low: float = Field(default=0.25, ge=0, le=1, description="seeds: base-model solve rate at least")
    seed_band_high: float = Field(default=0.75, ge=0, le=1)
    seed_candidates: int = Field(default=400, ge=1, description="seed-set candidates screened with the base model")
    band_low: float = Field(default=0.25, ge=0, le=1, description="learning band of a round")
    band_high: float = Field(default=0.75, ge=0, le=1)
    last_n_rounds: int = Field(default=2, ge=1, description="solve rates are estimated over these rounds")
    # A round's problems come from four pools (selection.select_round_problems): fresh (never
    # attempted), failed (below the band), solved (above it) and the band; the band gets what the
    # other three leave.
    fresh_fraction: float = Field(default=0.5, ge=0, le=1, description="share of slots for never-attempted problems")
    failed_fraction: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="most slots for problems below the "
        "band (the lowest level first): they teach through their reference solution",
    )
    solved_fraction: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="share of slots for problems above the band: keeps what the Solver can do in the training mix",
    )
    solved_by_level: bool = Field(
        default=False,
        description="split the solved slots evenly over the levels the "
        "solved pool holds (per-level replay quotas); default: a random sample",
    )
    min_vote_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="model-labelled problems whose majority vote share is below this are not trained on",
    )

    @model_validator(mode="after")
    def _shares_fit(self) -> SelectionConfig:
        total = self.fresh_fraction + self.failed_fraction + self.solved_fraction
        if total > 1 + 1e-9:
            raise ValueError(f"selection.fresh_fraction + failed_fraction + solved_fraction = {total:g} is above 1")
        return self


Mutation = Literal["harder", "easier", "sibling"]


class EndpointConfig(Section):
    """An OpenAI-compatible chat endpoint (a vLLM server, an API) and how it is called.

    The API key is never written here: `api_key_env` names the environment variable that holds it.
    """

    base_url: str | None = Field(
        default=None, description="e.g. http://127.0.0.1:8000/v1; none with teacher.serve (the run's own server)"
    )
    model: str | None = Field(
        default=None, description="the model name the endpoint serves; with teacher.serve: teacher.serve.served_name"
    )
    api_key_env: str | None = Field(
        default=None, description="NAME of the environment variable holding the API key; none: no key (a local server)"
    )
    timeout_s: float = Field(default=120.0, gt=0, description="seconds one call may take")
    max_concurrency: int = Field(default=8, ge=1, description="calls in flight at once")
    max_attempts: int = Field(default=3, ge=1, description="tries per workflow step on transport and parse errors")
    retry_backoff_s: float = Field(default=1.0, ge=0, description="wait before the first retry (doubles each time)")
    structured_output: Literal["json_schema", "json_object", "none"] = Field(
        default="json_schema",
        description="response_format asked of the endpoint; the reply is parsed tolerantly either way",
    )
    temperature: float = Field(default=0.7, ge=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    max_tokens: int = Field(default=1024, ge=1, description="most tokens of one reply")

    @model_validator(mode="after")
    def _key_is_a_name(self) -> EndpointConfig:
        if self.api_key_env is not None and not self.api_key_env.replace("_", "").isalnum():
            raise ValueError(
                "api_key_env must be the NAME of an environment variable (e.g. OPENAI_API_KEY), never the key itself"
            )
        return self


class ServeConfig(Section):
    """A vLLM OpenAI-compatible server the run starts on 127.0.0.1 for its Teacher (agents/serve.py)."""

    model: str = Field(description="a model folder or hub id")
    served_name: str = Field(default="teacher", description="the model name clients ask for")
    num_gpus: float = Field(default=0.0, ge=0, description="GPUs of the server's bundle in the placement group")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description="auto: float32 on CPU, the model's own dtype on a GPU"
    )
    max_model_len: int | None = Field(default=4096, ge=64)
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    enforce_eager: bool = Field(default=False, description="skip graph compilation (faster start, slower calls)")
    cpu_kvcache_gib: int = Field(default=1, ge=1, description="VLLM_CPU_KVCACHE_SPACE on a CPU server")
    startup_timeout_s: float = Field(default=600.0, gt=0, description="seconds until /health must answer")
    max_restarts: int = Field(default=2, ge=0, description="times a dead server is started again")
    structured_outputs_backend: str = Field(default="xgrammar", description="vLLM --structured-outputs-config backend")
    extra_args: list[str] = Field(default_factory=list, description="more `vllm serve` arguments")
    env: dict[str, str] = Field(default_factory=dict, description="more environment variables of the server")


class LabelConfig(Section):
    """Reference answers by majority vote of sampled solutions (SwS: at least 4 of 8 agree)."""

    samples: int = Field(default=8, ge=1, description="solutions sampled per draft")
    min_agreement: int = Field(default=4, ge=1, description="equivalent answers needed to label a draft")
    endpoint: EndpointConfig | None = Field(default=None, description="the labeller; default: the Teacher's")
    temperature: float = Field(default=0.7, ge=0)
    max_tokens: int = Field(default=1024, ge=1)
    extraction: Extraction = Field(default="boxed", description="how an answer is read from a sampled solution")
    prompt: str = Field(
        default="prompts/label.yaml", description="relative: to the working directory, else to the package's configs/"
    )

    @model_validator(mode="after")
    def _agreement_fits(self) -> LabelConfig:
        if self.min_agreement > self.samples:
            raise ValueError(f"min_agreement={self.min_agreement} is above samples={self.samples}")
        if self.endpoint is not None and not (self.endpoint.base_url and self.endpoint.model):
            raise ValueError(
                "a labeller endpoint needs base_url and model (leave it out to label with the Teacher's model)"
            )
        return self


class TeacherPrompts(Section):
    diagnose: str = "prompts/teacher_diagnose.yaml"
    write: str = "prompts/teacher_write.yaml"


class TeacherConfig(Section):
    enabled: bool = Field(default=True, description="rewrite failed problems each round (Socratic-Zero)")
    kind: Literal["symbolic", "llm"] = Field(
        default="symbolic",
        description="symbolic: the world's mutation operators; llm: a prompted model (roles/teacher/llm.py)",
    )
    mutations: list[Mutation] = Field(
        default_factory=lambda: ["harder", "sibling"],
        min_length=1,
        description="variants of a failure the Solver partly solves, in turn",
    )
    # A failure the Solver (almost) never solves gets variants of its own size or smaller: a harder
    # one would be further out of reach and teach nothing (multiple of 1/solver.attempts).
    unsolved_below: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="a failure solved less often than this is out of reach and gets `unsolved_mutations`",
    )
    unsolved_mutations: list[Mutation] = Field(default_factory=lambda: ["sibling", "easier"], min_length=1)
    variants_per_failure: int = Field(default=2, ge=1)
    max_failures: int = Field(default=32, ge=1, description="failed problems the Teacher rewrites per round")
    # kind: llm (also the model of synthesis.kind: llm)
    endpoint: EndpointConfig = EndpointConfig()
    serve: ServeConfig | None = Field(
        default=None, description="start a vLLM server for the Teacher instead of calling endpoint.base_url"
    )
    labels: LabelConfig = LabelConfig()
    prompts: TeacherPrompts = TeacherPrompts()
    attempts_shown: int = Field(default=4, ge=0, description="failed attempts shown to the Teacher per problem")

    @model_validator(mode="after")
    def _one_endpoint(self) -> TeacherConfig:
        if self.serve is not None and self.endpoint.base_url:
            raise ValueError(
                "set teacher.endpoint.base_url (an existing server) or teacher.serve (the run starts one), not both"
            )
        if self.endpoint.base_url and not self.endpoint.model:
            raise ValueError("teacher.endpoint.base_url needs teacher.endpoint.model (the model name it serves)")
        return self


class GeneratorConfig(Section):
    enabled: bool = True
    warmup_rounds: int = Field(default=2, ge=0, description="rounds of training before it proposes")
    proposals_per_round: int = Field(default=16, ge=0)
    usefulness_center: float = Field(default=0.5, ge=0, le=1)
    usefulness_width: float = Field(default=0.25, gt=0)
    learning_rate: float = Field(default=1e-3, gt=0)
    epochs: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=16, ge=1)
    temperature: float = Field(default=1.0, gt=0)
    max_new_tokens: int = Field(default=128, ge=1)


class GRPOSettings(Section):
    """GRPO on the Solver's groups: one group = the `solver.attempts` graded attempts at one problem."""

    groups_per_step: int = Field(default=4, ge=1, description="problems (groups) per optimizer step")
    # SwS's online difficulty filter: a group whose solve rate is outside the band has zero
    # advantage everywhere (all right or all wrong), so it is dropped and the batch is refilled from
    # the rest of the round's (oversampled) groups. Multiples of 1/solver.attempts; the default
    # (None) is 1/k and 1 - 1/k, i.e. [0.125, 0.875] with 8 samples: drop all-right and all-wrong.
    filter_low: float | None = Field(default=None, ge=0, le=1, description="default: 1/solver.attempts")
    filter_high: float | None = Field(default=None, ge=0, le=1, description="default: 1 - 1/solver.attempts")

    def band(self, attempts: int) -> tuple[float, float]:
        """(low, high) of the filter for groups of `attempts` samples."""
        low = 1 / attempts if self.filter_low is None else self.filter_low
        high = 1 - 1 / attempts if self.filter_high is None else self.filter_high
        return low, high

    kl_beta: float = Field(default=0.0, ge=0, description="KL weight to the base model (TRL beta); 0: no reference")
    epsilon: float = Field(default=0.2, gt=0, description="PPO clip range")
    loss_type: Literal["grpo", "dapo", "dr_grpo", "bnpo"] = "dapo"
    scale_rewards: Literal["group", "batch", "none"] = "group"
    importance_sampling: Literal["sequence_mask", "sequence_truncate", "token_mask", "token_truncate", "off"] = Field(
        default="sequence_mask",
        description="TRL's correction for the mismatch between the Solver's sampling "
        "log-probs and the trainer's (vllm_importance_sampling_mode, ratios capped at 3); off: none",
    )


class RetentionConfig(Section):
    """Keeping what the student knew (training/retention.py), for every learner: replay of verified
    successes as an NLL anchor, and a KL term to the base model on the same tokens."""

    anchor_weight: float = Field(
        default=0.0,
        ge=0,
        description="weight of the NLL of one correct attempt of each "
        "problem solved at least anchor_min_solve_rate of the time this round, added to every "
        "training step (such a problem gives DPO and GRPO no gradient of their own)",
    )
    anchor_min_solve_rate: float = Field(
        default=1.0, gt=0, le=1, description="problems solved at least this often this round are anchored (1.0: k of k)"
    )
    anchor_batch_size: int | None = Field(
        default=None, ge=1, description="anchors per step; default: learner.batch_size"
    )
    kl_weight: float = Field(
        default=0.0,
        ge=0,
        description="weight of KL(policy || base) on the anchors' tokens: a "
        "KL anchor for learners that have none of their own (SFT; GRPO with kl_beta 0)",
    )


class LearnerConfig(Section):
    algorithm: Literal["dpo", "grpo", "sft"] = Field(
        default="dpo",
        description="dpo: preference pairs; grpo: groups with the difficulty filter; "
        "sft: correct attempts (or the reference solution when all fail)",
    )
    beta: float = Field(default=0.1, gt=0)
    pairing: Literal["first", "all"] = Field(default="all", description="wrong attempts paired per problem")
    max_pairs_per_problem: int = Field(default=4, ge=1)
    rpo_alpha: float | None = Field(default=None, ge=0, description="NLL weight on chosen (TRL rpo_alpha)")
    learning_rate: float = Field(default=5e-4, gt=0)
    # The optimizer carries over from round to round. "cosine" decays to zero within each round (warm
    # restarts: every published policy is an annealed one); "cosine_run" is one cosine over the whole
    # run (loop.rounds x steps_per_round), which does not restart.
    lr_schedule: Literal["constant", "cosine", "cosine_run"] = Field(default="constant")
    warmup_ratio: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="share of the schedule's steps warming up (a round's; the run's with cosine_run)",
    )
    epochs: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=16, ge=1, description="pairs (dpo) or examples (sft) per optimizer step")
    steps_per_round: int | None = Field(
        default=None,
        ge=1,
        description="optimizer steps per round whatever the data size (equal compute "
        "across recipes); default: `epochs` passes over the round's data",
    )
    grpo: GRPOSettings = GRPOSettings()
    retention: RetentionConfig = RetentionConfig()

    @model_validator(mode="after")
    def _run_schedule_needs_steps(self) -> LearnerConfig:
        if self.lr_schedule == "cosine_run" and self.steps_per_round is None:
            raise ValueError("learner.lr_schedule=cosine_run needs learner.steps_per_round (the run's length in steps)")
        return self


class WeaknessConfig(Section):
    """SwS weakness mining over each problem's accuracy per round (from the store's attempts)."""

    threshold: float = Field(default=0.5, gt=0, le=1, description="weak: best accuracy in the window below this")
    window: int = Field(default=3, ge=2, description="the last rounds (in which the problem was attempted) looked at")
    min_rounds: int = Field(default=2, ge=2, description="rounds needed in the window to fit a slope")

    @model_validator(mode="after")
    def _window_holds_min_rounds(self) -> WeaknessConfig:
        if self.min_rounds > self.window:
            raise ValueError(f"weakness.min_rounds={self.min_rounds} is above weakness.window={self.window}")
        return self


class SynthesisPrompts(Section):
    concepts: str = "prompts/synthesis_concepts.yaml"
    question: str = "prompts/synthesis_question.yaml"


class SynthesisConfig(Section):
    """New problems aimed at concepts, screened by the Solver's solve rate (SwS)."""

    enabled: bool = False
    budget: int = Field(
        default=16, ge=1, description="drafts per round; each is screened with solver.attempts attempts"
    )
    concepts: Literal["weakness", "uniform"] = Field(
        default="weakness",
        description="weakness: budget per concept by failure ratio (SwS); "
        "uniform: concepts drawn uniformly (the random-synthesis baseline)",
    )
    band_low: float = Field(default=0.25, ge=0, le=1, description="keep a draft whose solve rate is at least")
    band_high: float = Field(default=0.75, ge=0, le=1)
    mutations: list[Mutation] = Field(
        default_factory=lambda: ["sibling", "harder"],
        min_length=1,
        description="how a draft varies its parent problem, in turn (kind: symbolic)",
    )
    kind: Literal["symbolic", "llm"] = Field(
        default="symbolic",
        description="symbolic: the world's mutations and "
        "oracle; llm: the Teacher's model writes and labels (teacher.endpoint)",
    )
    concepts_per_question: int = Field(default=2, ge=1, description="llm: concepts combined in one new question")
    prompts: SynthesisPrompts = SynthesisPrompts()


class LoopConfig(Section):
    rounds: int = Field(default=6, ge=0)
    problems_per_round: int = Field(
        default=64,
        ge=1,
        description="problems attempted per round (solver.attempts each); with synthesis on, "
        "synthesis.budget of them are the screened drafts, the rest are selected",
    )

    def selected_per_round(self, synthesis: SynthesisConfig) -> int:
        """Problems the curriculum selects for training: the round's attempts budget minus the drafts
        synthesis screens, so every recipe generates the same attempts (equal compute)."""
        return self.problems_per_round - (synthesis.budget if synthesis.enabled else 0)


class RoleResources(Section):
    count: int = Field(default=1, ge=1, description="actors of this role")
    num_cpus: float = Field(default=1.0, ge=0)
    num_gpus: float = Field(default=0.0, ge=0)


class RayConfig(Section):
    address: str | None = Field(default=None, description="join this cluster; default: a local one")
    num_cpus: int | None = Field(default=None, ge=1, description="CPUs of the local cluster")
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = "PACK"
    placement_timeout_s: float = Field(
        default=300.0,
        gt=0,
        description="how long to wait for the cluster to place every role (nodes joining an autoscaling cluster)",
    )
    in_process: bool = Field(
        default=False, description="run every role in the driver process, without Ray (debugging, tests)"
    )
    max_restarts: int = Field(
        default=3, ge=0, description="times Ray restarts a dead role actor; the call it was running is then sent again"
    )
    node_ip_address: str = Field(
        default="127.0.0.1",
        description="node address of a local cluster (Ray 2.60 "
        "resolves loopback to the host's address and guards its ports with a token)",
    )
    store: RoleResources = RoleResources(num_cpus=0)
    solver: RoleResources = RoleResources()
    teacher: RoleResources = RoleResources(num_cpus=0)
    generator: RoleResources = RoleResources(num_cpus=0)
    learner: RoleResources = RoleResources(num_cpus=0)

    def roles(self) -> dict[str, RoleResources]:
        """Each role's section (`ray.<role>`), by role name."""
        return {
            "store": self.store,
            "solver": self.solver,
            "teacher": self.teacher,
            "generator": self.generator,
            "learner": self.learner,
        }


class TrackingConfig(Section):
    tracking_uri: str | None = Field(default=None, description="default: sqlite:///<runs_dir>/mlflow.db")


def band_edge_error(value: float, attempts: int, name: str) -> str | None:
    """Why ``value`` is a bad band edge for ``attempts`` samples, or None.

    With k samples a solve-rate estimate is always c/k, so an edge between two
    multiples of 1/k silently means the next multiple; we make the user say it.
    """
    scaled = value * attempts
    if abs(scaled - round(scaled)) < 1e-9:
        return None
    below = Fraction(math.floor(scaled), attempts)
    above = Fraction(math.ceil(scaled), attempts)
    return (
        f"{name}={value} is not a multiple of 1/solver.attempts (attempts={attempts}): estimates are c/{attempts}, "
        f"use {float(below):g} or {float(above):g}"
    )


class Config(Section):
    experiment: ExperimentConfig = ExperimentConfig()
    model: ModelConfig = ModelConfig()
    world: WorldConfig = WorldConfig()
    pretrain: PretrainConfig = PretrainConfig()
    solver: SolverConfig = SolverConfig()
    verifier: VerifierConfig = VerifierConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    selection: SelectionConfig = SelectionConfig()
    teacher: TeacherConfig = TeacherConfig()
    generator: GeneratorConfig = GeneratorConfig()
    learner: LearnerConfig = LearnerConfig()
    weakness: WeaknessConfig = WeaknessConfig()
    synthesis: SynthesisConfig = SynthesisConfig()
    loop: LoopConfig = LoopConfig()
    ray: RayConfig = RayConfig()
    tracking: TrackingConfig = TrackingConfig()
    data_root: str = Field(default="../shared/data/benchmarks", description="relative dataset paths start here")
    datasets: dict[str, DatasetSpec] = Field(default_factory=dict)
    decontamination: DecontaminationConfig = DecontaminationConfig()

    @model_validator(mode="after")
    def _eval_sets_are_datasets(self) -> Config:
        for name in self.decontamination.eval_sets:
            if name not in self.datasets:
                known = ", ".join(sorted(self.datasets)) or "none"
                raise ValueError(f"decontamination.eval_sets: '{name}' is not a dataset in `datasets` (known: {known})")
        return self

    @model_validator(mode="after")
    def _world_can_host_the_recipe(self) -> Config:
        """The symbolic Teacher, SwS synthesis and the Generator need a world with mutation operators
        and an oracle (arithmetic); real problem sets have neither."""
        world = self.world
        for name in [*world.seed_sets, *world.heldout_sets, *world.heldout_size]:
            if name not in self.datasets:
                known = ", ".join(sorted(self.datasets)) or "none"
                raise ValueError(f"world: '{name}' is not a dataset in `datasets` (known: {known})")
        if world.name != "dataset":
            return self
        needs = "needs a world with mutation operators and an oracle (world.name=arithmetic)"
        if self.teacher.enabled and self.teacher.kind == "symbolic":
            raise ValueError(
                f"teacher.kind=symbolic {needs}; on world.name=dataset set teacher.kind=llm or teacher.enabled=false"
            )
        if self.synthesis.enabled and self.synthesis.kind == "symbolic":
            raise ValueError(
                f"synthesis.kind=symbolic {needs}; on world.name=dataset set synthesis.kind=llm or "
                "synthesis.enabled=false"
            )
        if self.generator.enabled:
            raise ValueError(
                "generator.enabled=true needs the world's oracle to answer the Generator's questions "
                "(world.name=arithmetic); on world.name=dataset set generator.enabled=false"
            )
        if self.model.kind == "tiny":
            raise ValueError(
                "model.kind=tiny is pretrained on the arithmetic world; on world.name=dataset use "
                "model.kind=hf with model.path"
            )
        return self

    @property
    def uses_llm_teacher(self) -> bool:
        """Whether the run needs the Teacher's model: the LLM Teacher, or LLM synthesis (which uses it)."""
        return (self.teacher.enabled and self.teacher.kind == "llm") or (
            self.synthesis.enabled and self.synthesis.kind == "llm"
        )

    @model_validator(mode="after")
    def _llm_teacher_has_a_model(self) -> Config:
        teacher = self.teacher
        if self.synthesis.enabled and self.synthesis.kind == "llm" and teacher.kind != "llm":
            raise ValueError(
                "synthesis.kind=llm writes with the Teacher's model: set teacher.kind=llm and its "
                "teacher.endpoint or teacher.serve (teacher.enabled may stay false)"
            )
        if self.uses_llm_teacher and teacher.serve is None and not teacher.endpoint.base_url:
            raise ValueError(
                "teacher.kind=llm needs teacher.endpoint.base_url (an OpenAI-compatible server) or "
                "teacher.serve.model (the run serves it with vLLM)"
            )
        if teacher.serve is not None and self.ray.teacher.num_gpus > 0:
            raise ValueError(
                "with teacher.serve the Teacher's GPUs are teacher.serve.num_gpus; leave ray.teacher.num_gpus at 0"
            )
        return self

    @model_validator(mode="after")
    def _bands_fit_attempts(self) -> Config:
        sel, k = self.selection, self.solver.attempts
        for low, high in (("seed_band_low", "seed_band_high"), ("band_low", "band_high")):
            if getattr(sel, low) > getattr(sel, high):
                raise ValueError(f"selection.{low}={getattr(sel, low)} is above selection.{high}={getattr(sel, high)}")
            for name in (low, high):
                error = band_edge_error(getattr(sel, name), k, f"selection.{name}")
                if error:
                    raise ValueError(error)
        if self.synthesis.enabled and self.synthesis.budget >= self.loop.problems_per_round:
            raise ValueError(
                f"synthesis.budget={self.synthesis.budget} must be below loop.problems_per_round="
                f"{self.loop.problems_per_round}: the drafts' screening comes out of the round's attempts"
            )
        error = band_edge_error(self.teacher.unsolved_below, k, "teacher.unsolved_below")
        if error:
            raise ValueError(error)
        bands = [("synthesis", self.synthesis, "band_low", "band_high")]
        if self.learner.algorithm == "grpo":  # the filter band only matters (and is checked) for GRPO
            if k < 2:
                raise ValueError(f"learner.algorithm=grpo needs solver.attempts >= 2 (a group), got {k}")
            bands.append(("learner.grpo", self.learner.grpo, "filter_low", "filter_high"))
        for prefix, section, low, high in bands:
            edges = {
                name: getattr(section, name) for name in (low, high) if getattr(section, name) is not None
            }  # the GRPO filter's default edges are multiples of 1/k
            if len(edges) == 2 and edges[low] > edges[high]:
                raise ValueError(f"{prefix}.{low}={edges[low]} is above {prefix}.{high}={edges[high]}")
            for name, value in edges.items():
                error = band_edge_error(value, k, f"{prefix}.{name}")
                if error:
                    raise ValueError(error)
        return self


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


# Keys earlier versions had, which every run directory's saved config.yaml still holds: at the value
# those versions wrote by default they are dropped, so such a run resumes and evaluates; set to
# anything else they are refused as unknown keys (their setting no longer exists).
RETIRED_KEYS: dict[tuple[str, ...], Any] = {
    ("evaluation", "instruction"): BOXED_INSTRUCTION,  # curriculum eval asks in the world's format now
    ("datasets", "*", "completion_extraction"): "auto",  # a model's answer is read by world.extraction
    ("datasets", "*", "id_field"): None,  # ids derive from the question
}


def _without_retired(data: dict[str, Any]) -> dict[str, Any]:
    """`data` less the retired keys that hold their old default (copied where changed)."""

    def drop(node: Any, path: tuple[str, ...], default: Any) -> Any:
        if not isinstance(node, dict):
            return node
        head, rest = path[0], path[1:]
        names = list(node) if head == "*" else [head] if head in node else []
        if not rest:
            return {k: v for k, v in node.items() if not (k in names and v == default)}
        return {k: drop(v, rest, default) if k in names else v for k, v in node.items()}

    for path, default in RETIRED_KEYS.items():
        data = drop(data, path, default)
    return data


def from_dict(data: dict[str, Any], source: str = "<dict>") -> Config:
    data = _without_retired(data)
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
    merged = base
    for item in overrides:  # one at a time, so an error names the override
        try:
            override = OmegaConf.from_dotlist([item])
            key = item.split("=", 1)[0]
            value = OmegaConf.select(override, key)
            if isinstance(value, (DictConfig, ListConfig)):
                merged = OmegaConf.merge(merged, override)
            else:  # a plain value replaces what is there (e.g. one held-out count for a per-level mapping)
                merged = merged.copy()
                OmegaConf.update(merged, key, value, merge=False)
        except (OmegaConfBaseException, TypeError, ValueError) as exc:
            raise ConfigError(
                f"override '{item}' does not fit what {path} has there: {str(exc).splitlines()[0]}"
            ) from None
    try:
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
