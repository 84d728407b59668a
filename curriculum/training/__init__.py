"""Learner algorithms on TRL: supervised fine-tuning (sft.py), DPO and GRPO.

Modules import TRL lazily inside functions, so importing this package stays cheap.
"""
