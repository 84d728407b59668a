"""Share of round wall time spent outside model compute, at make-run size (configs/tiny.yaml).

Model compute = generation and grading (the Solver's `attempt` and `evaluate`), variant-making
(the Teacher's `teach`), training steps (the Learner's `learn`, the Generator's `train`) and the
Generator's `propose`, as each actor times its role methods, less what those methods spend
outside the model: building the round's dataset and TRL trainer (`setup_seconds` in the learn and
train metrics) and the Generator's checkpoint save (`save_seconds`). Everything else is overhead:
checkpoint writes (the Learner's `publish` of adapter and optimizer, the Generator's save), policy
loads (the Solvers' `load_policy`, restores), trainer construction, Ray messaging, store writes and
queries, snapshots, MLflow and the driver. A round's wall time is measured around the whole round
as `curriculum run` does it (every stage, then the MLflow log).

Prints per-round numbers with the overhead split by cause, and the round trips to the actors (calls
each role's actor ran, and those that publish a policy: the Learner's publish and the Solvers'
policy loads), and ends with `RESULT overhead_share=... overhead_share_excl_checkpoints=...
round_trips=... policy_round_trips=...` (per round); the second share leaves the checkpoint writes
(publish, Generator save) out of the overhead.

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

# Role methods whose time is model compute (less the setup and save parts their metrics report).
COMPUTE = {
    "solver": ("attempt", "evaluate"),
    "teacher": ("teach",),
    "learner": ("learn",),
    "generator": ("train", "propose"),
}


def split_round(busy: dict[str, list[dict[str, float]]], metrics: dict[str, float]) -> dict[str, float]:
    """Seconds of the round per kind: compute, and the overhead that actors' clocks see."""
    solver_compute = max((sum(b.get(m, 0.0) for m in COMPUTE["solver"]) for b in busy["solver"]), default=0.0)
    setup = metrics.get("learner/setup_seconds", 0.0) + metrics.get("generator/setup_seconds", 0.0)
    generator_save = metrics.get("generator/save_seconds", 0.0)
    compute = (
        solver_compute
        - setup
        - generator_save
        + sum(b.get(m, 0.0) for role in ("teacher", "learner", "generator") for b in busy[role] for m in COMPUTE[role])
    )
    return {
        "compute": compute,
        "checkpoint_writes": sum(b.get("publish", 0.0) for b in busy["learner"]) + generator_save,
        "policy_loads": sum(
            b.get(m, 0.0)
            for role in ("solver", "learner", "generator")
            for b in busy[role]
            for m in ("load_policy", "restore")
        ),
        "trainer_setup": setup,
    }


# The calls that carry a new policy from the Learner to the Solvers.
POLICY_CALLS = {"learner": ("publish",), "solver": ("load_policy",)}


def round_trips(calls: dict[str, list[dict[str, int]]]) -> tuple[int, int]:
    """(calls every actor ran, those that publish the policy) in a round."""
    total = sum(n for per_role in calls.values() for counts in per_role for n in counts.values())
    policy = sum(
        counts.get(method, 0) for role, methods in POLICY_CALLS.items() for counts in calls[role] for method in methods
    )
    return total, policy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()

    import ray

    from agents import cluster
    from curriculum.models import load_tokenizer, prompt_for
    from curriculum.report.tracking import Tracker, default_tracking_uri
    from curriculum.run.actors import start_roles
    from curriculum.run.loop import CoEvolution
    from curriculum.rundir import create_run_dir
    from curriculum.store import Store
    from curriculum.training.pretrain import pretrain
    from curriculum.worlds import make_world

    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        config = load_config(
            ROOT / "configs/tiny.yaml",
            [f"experiment.runs_dir={tmp}", "experiment.run_name=bench", f"loop.rounds={args.rounds}", *args.overrides],
        )
        run_dir = create_run_dir(config)
        base_path = str(pretrain(config, progress=False).path)
        cluster.start_ray(config.ray)
        roles, placement = start_roles(config, run_dir, base_path)
        try:
            by_role = {
                "solver": roles.solvers,
                "teacher": [roles.teacher] if roles.teacher else [],
                "learner": [roles.learner],
                "generator": [roles.generator] if roles.generator else [],
            }
            tokenizer = load_tokenizer(base_path)
            world = make_world(config)
            loop = CoEvolution(
                config, roles, world, run_dir, prompt=lambda q: prompt_for(q, tokenizer, world.instruction)
            )
            tracker = Tracker(default_tracking_uri(tmp), experiment="bench-overhead", run_name="bench")
            loop.prepare_seeds()
            for role in (r for rs in by_role.values() for r in rs):  # start every round from zero
                ray.get(role.handle.busy_seconds.remote())
                ray.get(role.handle.call_counts.remote())
            rounds, trips = [], []
            for round_ in range(1, args.rounds + 1):
                start = time.perf_counter()
                report = loop.run_round(round_)
                tracker.log_metrics(report.metrics, step=round_)
                wall = time.perf_counter() - start
                busy = {name: [ray.get(r.handle.busy_seconds.remote()) for r in rs] for name, rs in by_role.items()}
                parts = split_round(busy, report.metrics)
                rounds.append((wall, parts))
                calls = {name: [ray.get(r.handle.call_counts.remote()) for r in rs] for name, rs in by_role.items()}
                trips.append(round_trips(calls))
                other = wall - sum(parts.values())
                print(
                    f"round {round_}: wall {wall:.2f} s, model compute {parts['compute']:.2f} s, overhead "
                    f"{(wall - parts['compute']) / wall:.3f} (checkpoint writes {parts['checkpoint_writes']:.2f} s, "
                    f"policy loads {parts['policy_loads']:.2f} s, trainer setup {parts['trainer_setup']:.2f} s, "
                    f"store/Ray/driver/MLflow {other:.2f} s); round trips {trips[-1][0]} "
                    f"(publishing the policy: {trips[-1][1]})",
                    flush=True,
                )
            tracker.finish()
            roles.store.call(Store.close).result()
        finally:
            placement.remove()
            cluster.stop_ray()
    wall = sum(w for w, _ in rounds)
    compute = sum(p["compute"] for _, p in rounds)
    checkpoints = sum(p["checkpoint_writes"] for _, p in rounds)
    print(
        f"RESULT overhead_share={max(0.0, wall - compute) / wall:.4f} "
        f"overhead_share_excl_checkpoints={max(0.0, wall - compute - checkpoints) / wall:.4f} "
        f"round_trips={sum(t for t, _ in trips) / len(trips):.1f} "
        f"policy_round_trips={sum(p for _, p in trips) / len(trips):.1f}"
    )


if __name__ == "__main__":
    main()
