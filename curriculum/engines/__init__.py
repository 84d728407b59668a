"""Inference backends behind one interface: transformers (hf.py) and vLLM (vllm.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curriculum.engines.base import Generation, InferenceEngine
from curriculum.engines.vllm import VLLMEngine

__all__ = ["Generation", "InferenceEngine", "make_engine"]


def make_engine(
    config: Any,
    model_path: str | Path,
    work_dir: str | Path,
    device: str = "cpu",
    adapter: str | Path | None = None,
    version: int = 0,
) -> InferenceEngine:
    """The engine of `solver.engine` on the base model at `model_path`, with `adapter` (policy
    `version`) applied.

    `work_dir` is where the vLLM engine keeps its files (the HF engine needs none).
    """
    if config.solver.engine == "vllm":
        engine: InferenceEngine = VLLMEngine.from_config(config, model_path, work_dir, device=device)
    else:
        from curriculum.engines.hf import HFEngine

        engine = HFEngine.from_pretrained(
            model_path, dtype=config.model.dtype, device=device, batch_size=config.solver.batch_size
        )
    if adapter is not None:
        engine.load_adapter(adapter, version)
    return engine
