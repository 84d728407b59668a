"""Traces of the LLM workflows: every LangGraph/LangChain call of the Teacher into the run's MLflow run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class TraceTarget:
    """Where the LLM workflows' traces go: the run's MLflow run (picklable, sent to the Teacher's actor)."""

    tracking_uri: str
    experiment_id: str
    run_id: str


_autologged: set[str] = set()


def langchain_tracing(target: TraceTarget) -> Callable[[str, int], AbstractContextManager[None]]:
    """`(stage, round) -> context manager` under which every LangGraph/LangChain call is traced by
    MLflow (`mlflow.langchain.autolog`) into `target`'s experiment, linked to its run (trace metadata
    mlflow.sourceRun) and tagged with the stage and round; traces are flushed when the scope ends.
    Works offline with the sqlite backend."""

    @contextmanager
    def scope(stage: str, round: int) -> Iterator[None]:
        import mlflow

        if target.tracking_uri not in _autologged:  # once per process (the import costs seconds)
            mlflow.set_tracking_uri(target.tracking_uri)
            mlflow.set_experiment(experiment_id=target.experiment_id)
            mlflow.langchain.autolog(log_traces=True, silent=True)
            _autologged.add(target.tracking_uri)
        try:
            with mlflow.tracing.context(
                metadata={"mlflow.sourceRun": target.run_id},
                tags={"curriculum.stage": stage, "curriculum.round": str(round)},
            ):
                yield
        finally:
            mlflow.flush_trace_async_logging()

    return scope
