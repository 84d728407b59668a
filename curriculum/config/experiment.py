"""experiment: the run's name and seed; tracking: where MLflow logs."""

from __future__ import annotations

from pydantic import Field

from curriculum.config.base import Section


class ExperimentConfig(Section):
    name: str = "tiny"
    run_name: str | None = Field(default=None, description="defaults to a timestamp")
    seed: int = 0
    runs_dir: str = "runs"


class TrackingConfig(Section):
    tracking_uri: str | None = Field(default=None, description="default: sqlite:///<runs_dir>/mlflow.db")
