"""The actor-kill fault injection (`CURRICULUM_KILL_ACTOR`) names calls by role, method, call
number and phase, and each item fires once."""

import pytest

from curriculum import faults


@pytest.fixture(autouse=True)
def fresh_counts():
    faults.reset_actor_kills()
    yield
    faults.reset_actor_kills()


def test_items_fire_at_the_nth_call_of_their_method_once(monkeypatch):
    monkeypatch.setenv(faults.ACTOR_KILL_ENV, "learner.publish#2:sent, store.append, solver.attempt#1:idle")
    calls = [
        ("learner", "publish"),
        ("store", "append"),
        ("learner", "publish"),
        ("solver", "attempt"),
        ("store", "append"),
        ("learner", "publish"),
        ("learner", "learn"),
    ]
    assert [faults.actor_kill(role, method) for role, method in calls] == [
        None,
        "done",
        "sent",
        "idle",
        None,
        None,
        None,
    ]
    assert faults.actor_kills_fired() == ["learner.publish#2:sent", "solver.attempt#1:idle", "store.append"]


def test_unset_it_counts_nothing(monkeypatch):
    monkeypatch.delenv(faults.ACTOR_KILL_ENV, raising=False)
    assert faults.actor_kill("store", "append") is None
    monkeypatch.setenv(faults.ACTOR_KILL_ENV, "store.append")
    assert faults.actor_kill("store", "append") == "done"  # the first call counted is this one


def test_an_unknown_phase_is_refused(monkeypatch):
    monkeypatch.setenv(faults.ACTOR_KILL_ENV, "store.append:later")
    with pytest.raises(ValueError, match="when must be one of sent, done, idle"):
        faults.actor_kill("store", "append")
