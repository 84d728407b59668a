"""model: the toy model or a real one, its LoRA and dtype; pretrain: the toy base model's SFT."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from curriculum.config.base import Section


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
