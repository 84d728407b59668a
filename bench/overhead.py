"""Share of round wall time spent outside model compute, on the tiny config.

Model compute = time inside the Solver, Teacher, Learner and Generator role methods
(generation, grading, training, variant-making), measured by each actor. Everything
else — Ray messaging, store writes and queries, snapshots, checkpoints, the driver —
is overhead. A round's wall time is measured around the whole round as `curriculum run` does
it (every stage, then the MLflow log). Prints per-round numbers and ends with
`RESULT overhead_share=...`.

    .venv/bin/python bench/overhead.py [--rounds N] [key=value ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curriculum.config import load_config  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()

    import ray

    from agents import cluster
    from agents import roles as factories
    from curriculum.models import load_tokenizer, prompt_for
    from curriculum.report.tracking import Tracker, default_tracking_uri
    from curriculum.run.loop import CoEvolution
    from curriculum.run.rundir import create_run_dir
    from curriculum.run.runner import start_roles
    from curriculum.training.pretrain import pretrain

    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        config = load_config(ROOT / "configs/tiny.yaml", [
            f"experiment.runs_dir={tmp}", "experiment.run_name=bench", f"loop.rounds={args.rounds}", *args.overrides])
        run_dir = create_run_dir(config)
        base_path = str(pretrain(config, progress=False).path)
        cluster.start_ray(config.ray)
        roles, placement = start_roles(config, run_dir, base_path)
        try:
            compute_roles = [*roles.solvers, roles.teacher, roles.learner] + ([roles.generator] if roles.generator else [])
            tokenizer = load_tokenizer(base_path)
            loop = CoEvolution(config, roles, factories.make_world(config), run_dir,
                               prompt=lambda q: prompt_for(q, tokenizer))
            tracker = Tracker(default_tracking_uri(tmp), experiment="bench-overhead", run_name="bench")
            loop.prepare_seeds()
            for role in compute_roles:  # start every round from zero
                role.handle.busy_seconds.remote()
            shares = []
            for round_ in range(1, args.rounds + 1):
                start = time.perf_counter()
                report = loop.run_round(round_)
                tracker.log_metrics(report.metrics, step=round_)
                wall = time.perf_counter() - start
                busy = [ray.get(role.handle.busy_seconds.remote()) for role in compute_roles]
                # Solvers run in parallel: count the slowest one, plus the other roles in full.
                solver_busy = max(sum(b.values()) for b in busy[: len(roles.solvers)])
                compute = solver_busy + sum(sum(b.values()) for b in busy[len(roles.solvers):])
                share = max(0.0, wall - compute) / wall
                shares.append((wall, compute))
                print(f"round {round_}: wall {wall:.2f} s, model compute {compute:.2f} s, overhead {share:.3f}",
                      flush=True)
            tracker.finish()
            roles.store.call("close").result()
        finally:
            placement.remove()
            cluster.stop_ray()
    wall = sum(w for w, _ in shares)
    compute = sum(c for _, c in shares)
    print(f"RESULT overhead_share={max(0.0, wall - compute) / wall:.4f}")


if __name__ == "__main__":
    main()
