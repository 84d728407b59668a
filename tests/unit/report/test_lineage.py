"""`curriculum lineage` and `curriculum inspect` on a synthetic run's snapshots (see conftest.py)."""

import json

import pytest

from curriculum.cli import main
from curriculum.report.lineage import load_lineage
from curriculum.report.summary import InspectError, summarize


def test_lineage_walks_to_the_seed_and_down_to_every_descendant(synthetic_run):
    run_dir, p = synthetic_run
    lineage, snapshot = load_lineage(run_dir, p["child"].id)
    assert snapshot == "round_0002"
    assert [a.id for a in lineage.ancestors] == [p["seed"].id]
    assert lineage.root.source == "seed"
    assert [d.id for d in lineage.descendants()] == [p["grandchild"].id]
    assert lineage.problem.solve == {2: (4, 1)} and lineage.problem.rate(2) == 0.25
    assert lineage.ancestors[0].solve == {0: (4, 2), 1: (4, 4)}

    from_seed, _ = load_lineage(run_dir, p["seed"].id)
    assert from_seed.ancestors == [] and from_seed.root is from_seed.problem
    assert [c.id for c in from_seed.problem.children] == sorted(
        [p["child"].id, p["sibling"].id], key=lambda i: (i != p["child"].id, i)
    )
    assert [d.id for d in from_seed.descendants()][-1] == p["grandchild"].id


def test_ids_by_unique_prefix_and_clear_errors(synthetic_run):
    run_dir, p = synthetic_run
    assert load_lineage(run_dir, p["grandchild"].id[:10])[0].problem.id == p["grandchild"].id
    with pytest.raises(InspectError, match="not in the snapshot"):
        load_lineage(run_dir, "pnothere")
    with pytest.raises(InspectError, match="ambiguous"):
        load_lineage(run_dir, "p")
    with pytest.raises(InspectError, match="no snapshots yet"):
        load_lineage(run_dir.parent, "p")


def test_lineage_cli_prints_the_tree_and_json(synthetic_run, capsys):
    run_dir, p = synthetic_run
    assert main(["lineage", str(run_dir), p["child"].id]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if " [" in line]
    # root first, then the problem, then its child, each with solve rates per round
    order = [next(k for k in ("seed", "child", "grandchild") if p[k].id in line) for line in lines]
    assert order == ["seed", "child", "grandchild"]
    assert "r0:2/4 r1:4/4" in out and "r2:1/4" in out and "never attempted" in out
    assert main(["lineage", str(run_dir), p["child"].id, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["root_source"] == "seed" and data["ancestors"][0]["id"] == p["seed"].id
    assert data["problem"]["solve_rate"] == {"2": {"attempts": 4, "correct": 1, "rate": 0.25}}
    assert data["descendants"][0]["id"] == p["grandchild"].id
    assert main(["lineage", str(run_dir), "pnothere"]) == 2


def test_summary_reports_band_weak_concepts_and_acceptance(synthetic_run):
    run_dir, p = synthetic_run
    summary = summarize(run_dir)
    assert summary["snapshot"] == "round_0002"
    assert [r["round"] for r in summary["rounds"]] == [1, 2]
    assert summary["rounds"][1]["eval"] == {"overall": 0.75, "by_level": {"1": 1.0, "2": 0.5}}
    assert summary["rounds"][0]["validation"] is None  # a round without a validation set
    assert summary["rounds"][1]["validation"] == {"overall": 0.6, "by_level": {"1": 0.8, "2": 0.4}, "worst_drop": 20.0}
    assert summary["rounds"][1]["problems_by_source"] == {"generator": 1, "teacher": 1}
    # round 1 attempted the level-1 seed and the level-3 one; round 2 the level-2 child and the level-3 seed
    assert summary["rounds"][0]["attempted_by_level"] == {"1": 1, "3": 1}
    assert summary["rounds"][1]["mean_level_attempted"] == 2.5
    # last_n_rounds=1: the seed keeps its all-round rate 6/8 (not attempted in round 2) and is in band,
    # the child 1/4 is in band, the other seed 0/4 below; grandchild and sibling never attempted.
    assert summary["band"]["counts"] == {"below": 1, "in_band": 2, "above": 0, "unattempted": 2}
    assert summary["band"]["in_band_by_level"] == {"1": 1, "2": 1}
    weak = summary["weak_concepts"]
    assert [w["concept"] for w in weak] == ["add.carry", "add.carry_chain", "add.no_carry"]
    assert weak[-1] == {"concept": "add.no_carry", "problems": 1, "attempts": 4, "failures": 3, "failure_rate": 0.75}
    assert summary["acceptance"] == {
        "teacher": {"accepted": 2, "rejected": 2, "rate": 0.5, "reasons": {"contaminated": 1, "duplicate": 1}},
        "generator": {"accepted": 1, "rejected": 2, "rate": 1 / 3, "reasons": {"unparseable": 2}},
    }
    assert summary["store"] == {"problems": 5, "attempts": 20, "pairs": 0, "rejected": 4, "calls": 0}
    assert summary["calls"] == [] and summary["label_quality"] == {"rounds": [], "vote_shares": {}}


def test_inspect_cli_shows_every_table(synthetic_run, capsys):
    run_dir, _ = synthetic_run
    assert main(["inspect", str(run_dir)]) == 0
    out = capsys.readouterr().out
    for title in (
        "held-out accuracy % by level",
        "validation accuracy % by level",
        "problems added by source and round",
        "learning band now",
        "weakest concepts",
        "drafts: accepted and rejected",
        "store: problems 5",
    ):
        assert title in out, title
    assert "contaminated 1" in out and "unparseable 2" in out
    assert main(["inspect", str(run_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["band"]["counts"]["in_band"] == 2


def test_inspect_reads_the_run_as_of_an_earlier_round(synthetic_run, capsys):
    run_dir, _ = synthetic_run
    assert main(["inspect", str(run_dir), "--round", "1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["snapshot"] == "round_0001" and [r["round"] for r in summary["rounds"]] == [1]
    assert summary["store"] == {"problems": 3, "attempts": 12, "pairs": 0, "rejected": 1, "calls": 0}
    assert main(["inspect", str(run_dir), "--round", "3"]) == 2  # EXIT_USAGE, one line
    assert "snapshots reach round 2, not 3" in capsys.readouterr().err
