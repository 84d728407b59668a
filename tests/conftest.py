import os

# Toy-sized models run faster on one thread than on two competing ones, and tests must
# not depend on what else the machine is doing.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

# A run small enough for the test suite: tiny model, two families, three levels.
TINY_RUN_OVERRIDES = [
    "model.tiny.hidden_size=32", "model.tiny.num_layers=2", "model.tiny.num_heads=2", "model.tiny.num_kv_heads=1",
    "model.tiny.intermediate_size=64", "pretrain.examples=128", "pretrain.batch_size=32",
    "world.families=[add,sub]", "world.max_level=3", "world.heldout_per_level=3", "world.seed_set_size=12",
    "selection.seed_candidates=24", "solver.attempts=4", "solver.max_new_tokens=48", "evaluation.max_new_tokens=48",
    "loop.rounds=2", "loop.problems_per_round=8", "generator.warmup_rounds=0", "generator.proposals_per_round=4",
    "teacher.max_failures=4", "ray.num_cpus=2",
]
