"""Where problems and reference answers come from."""

from curriculum.worlds.arithmetic import ArithmeticWorld

__all__ = ["ArithmeticWorld"]
