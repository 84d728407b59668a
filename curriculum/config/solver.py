"""solver: how attempts are sampled, one variant per engine (`solver.engine`); verifier and evaluation:
how they are graded and how the policy is evaluated."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from curriculum.config.base import Section


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


class SolverSettings(Section):
    """How the Solver samples, whatever engine samples for it."""

    attempts: int = Field(default=8, ge=1, description="attempts sampled per problem (k)")
    temperature: float = Field(default=1.0, gt=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    max_new_tokens: int = Field(default=192, ge=1)
    batch_size: int = Field(default=256, ge=1, description="sequences per generate() batch (hf engine)")
    sleep_while_learning: bool | Literal["auto"] = Field(
        default="auto",
        description="the Solvers give their GPU memory back while the Learner trains and load the new "
        "policy on waking (hf: weights to CPU memory; vllm: sleep mode level 1, CUDA only); auto: when a "
        "Solver and the Learner share a GPU, i.e. both ask for GPUs and either ray.in_process or both ask "
        "for a fraction of one (ray.solver.num_gpus < 1 and ray.learner.num_gpus < 1, which Ray packs "
        "onto one GPU)",
    )


class HFSolverConfig(SolverSettings):
    """`solver.engine: hf`: transformers `generate` (curriculum/engines/hf.py)."""

    engine: Literal["hf"] = Field(
        default="hf",
        description="what samples attempts and runs held-out evaluation: hf (transformers "
        "generate) or vllm (one LLM.generate per round, a LoRA per policy version; "
        "install with `make vllm` on CPU or the gpu extra)",
    )


class VLLMSolverConfig(SolverSettings):
    """`solver.engine: vllm`: one `LLM.generate` per round (curriculum/engines/vllm.py)."""

    engine: Literal["vllm"] = "vllm"
    vllm: VLLMConfig = VLLMConfig()


SolverConfig = Annotated[HFSolverConfig | VLLMSolverConfig, Field(discriminator="engine")]


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
