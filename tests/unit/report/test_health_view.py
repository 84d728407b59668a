"""`curriculum inspect` shows the health of each round's new problems (curricula/health.py) from the
round metrics of a snapshot, and marks the rounds that warned."""

import json

from curriculum.cli import main
from curriculum.config import Config, to_yaml
from curriculum.curricula.health import NearDuplicates, observe_round
from curriculum.records import Problem, RoundStats
from curriculum.store import Store
from curriculum.store.queries import LocalReader

COPIED = (
    "A farmer sells apples at the market on monday and some more on friday, then gives a few to his "
    "neighbour and keeps the rest in a basket in the barn; how many apples are in the basket on day"
)


def test_inspect_shows_the_health_table_and_the_low_diversity_rounds(tmp_path, capsys):
    config = Config(health={"warn_after_rounds": 2})
    run_dir = tmp_path / "runs" / "tiny" / "health"
    (run_dir / "snapshots").mkdir(parents=True)
    (run_dir / "config.yaml").write_text(to_yaml(config))
    index = NearDuplicates(config.health.near_duplicate_similarity, config.health.num_perm, config.health.shingle)
    questions = {
        1: [f"What is {a}+{b}?" for a, b in [(3, 4), (12, 9), (40, 7), (5, 66)]],  # diverse
        2: [f"{COPIED} {n}?" for n in range(4)],  # near-copies of each other: the stream collapses
        3: [f"{COPIED} {n}?" for n in range(4, 8)],
    }
    with Store(run_dir / "store.duckdb") as store:
        for round, texts in questions.items():
            store.append(
                [Problem(question=q, answer="1", source="teacher", round_created=round, vote_share=0.5) for q in texts]
            )
            metrics, _ = observe_round(LocalReader(store), round, index, config.health)
            store.append([RoundStats(round=round, policy_version=round, metrics=metrics)])
        store.export_parquet(run_dir / "snapshots" / "round_0003")
    assert main(["inspect", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "health of each round's new problems" in out
    assert "2 LOW" in out and out.count("LOW") == 1  # round 3 only: the second low round in a row
    assert main(["inspect", str(run_dir), "--json"]) == 0
    health = json.loads(capsys.readouterr().out)["health"]
    assert [h["round"] for h in health] == [1, 2, 3]
    assert [h["low_diversity"] for h in health] == [0, 0, 1]
    assert health[0]["near_duplicate_rate"] == 0 and health[2]["near_duplicate_rate"] == 1
    assert health[0]["vote_share_mean"] == 0.5 and health[0]["new_problems"] == 4
