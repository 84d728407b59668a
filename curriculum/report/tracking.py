"""MLflow logging from the driver: one parent run per experiment run, step = round.

SQLite backend by default (MLflow refuses the file store), telemetry off. The run id
is kept in the run directory so a resumed run continues the same MLflow run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from curriculum.roles.teacher.tracing import TraceTarget

PARAMS_PER_BATCH = 100  # MLflow's log_batch limit
METRICS_PER_BATCH = 1000
MAX_PARAM_CHARS = 6000


def default_tracking_uri(runs_dir: str | Path) -> str:
    return f"sqlite:///{Path(runs_dir).resolve() / 'mlflow.db'}"


class Tracker:
    """Logs params, per-round metrics and artifacts of one experiment run."""

    def __init__(self, tracking_uri: str, experiment: str, run_name: str, run_id: str | None = None):
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
        if run_id is None:
            run_id = self.client.create_run(experiment_id, run_name=run_name).info.run_id
        else:
            self.client.update_run(run_id, status="RUNNING")
        self.run_id = run_id
        self.experiment_id = experiment_id

    def trace_target(self) -> TraceTarget:
        return TraceTarget(self.tracking_uri, self.experiment_id, self.run_id)

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(key, str(value)[:MAX_PARAM_CHARS]) for key, value in sorted(params.items())]
        for start in range(0, len(items), PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=items[start : start + PARAMS_PER_BATCH])

    def set_tags(self, tags: dict[str, str]) -> None:
        for key, value in sorted(tags.items()):
            self.client.set_tag(self.run_id, key, value)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(key, float(value), now, step) for key, value in sorted(metrics.items())]
        for start in range(0, len(items), METRICS_PER_BATCH):
            self.client.log_batch(self.run_id, metrics=items[start : start + METRICS_PER_BATCH])

    def logged_steps(self, key: str) -> set[int]:
        """The steps at which `key` was logged: a resumed run logs only the steps still missing."""
        return {metric.step for metric in self.client.get_metric_history(self.run_id, key)}

    def log_artifacts(self, local_dir: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifacts(self.run_id, str(local_dir), artifact_path)

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)
