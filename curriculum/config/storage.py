"""What a run keeps on disk as it grows: the store's snapshots and token arrays (`store`), and the
policy checkpoints (`checkpoint`). None of it changes what is trained."""

from __future__ import annotations

from pydantic import Field

from curriculum.config.base import Section


class StoreConfig(Section):
    snapshot_compact_every: int = Field(
        default=50,
        ge=1,
        description="every this many rounds the per-round Parquet snapshot files (snapshots/<table>/from_round=NNNN/) "
        "are merged into one file per table, so a 1,000-round run keeps about rounds/this + this files a table",
    )
    keep_token_arrays: bool = Field(
        default=False,
        description="keep every attempt's token_ids and token_logprobs; false: they are emptied once no "
        "Learner can read them (after the learn stage, all but the last loop.max_staleness + 1 rounds)",
    )


class CheckpointConfig(Section):
    keep_last: int = Field(
        default=2,
        ge=1,
        description="the newest published policy versions (checkpoints/policy_vNNNN/) kept; older ones are "
        "deleted at the end of each round unless checkpoint.keep_every keeps them. Only the newest keeps its "
        "optimizer state (what a resumed Learner restores); the others keep their adapter",
    )
    keep_every: int = Field(
        default=50,
        ge=0,
        description="also keep the adapter of every policy version that is a multiple of this (for later "
        "evaluation); 0: none",
    )
