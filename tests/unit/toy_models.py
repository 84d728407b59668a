"""Shared sizes of the toy models the unit tests train (imported by tests/unit/conftest.py too)."""

from curriculum.config import TinyModelConfig

# A model small enough that a training step takes milliseconds.
SMALL = TinyModelConfig(hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=64)
