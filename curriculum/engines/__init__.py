"""Inference backends behind one interface (transformers now, vLLM later)."""

from curriculum.engines.base import Generation, InferenceEngine

__all__ = ["Generation", "InferenceEngine"]
