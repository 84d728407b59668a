"""What a role needs on its node (curriculum/rundir.py): the base model is checked, or written from
the files the driver sent, when the role is built; a role that cannot be built says why in one line."""

from __future__ import annotations

import socket

import pytest

from agents.proxy import RoleActor
from agents.roles import model_on_node
from curriculum.errors import CurriculumError
from curriculum.files import FolderFiles
from curriculum.models import ModelError


def test_a_model_path_missing_on_this_node_is_refused_naming_the_node_and_the_path(tmp_path):
    missing = str(tmp_path / "models" / "qwen")
    with pytest.raises(ModelError, match=rf"'{missing}' does not exist .* on node {socket.gethostname()}") as error:
        model_on_node(missing, "learner")
    assert "where the learner runs" in str(error.value) and "\n" not in str(error.value)
    assert model_on_node(str(tmp_path), "solver-0") == str(tmp_path)  # a folder that is here
    assert model_on_node("Qwen/Qwen2.5-0.5B", "solver-0") == "Qwen/Qwen2.5-0.5B"  # a hub id: downloaded there


def test_the_files_the_driver_sent_are_written_on_this_node(tmp_path):
    sent = FolderFiles(str(tmp_path / "driver-cache"), {"config.json": b"{}", "sub/tokenizer.json": b"[1]"})
    folder = model_on_node(sent, "learner")
    assert folder != sent.source and sent.found_at(folder)


def test_an_actor_whose_role_cannot_be_built_answers_every_call_with_the_error():
    def factory():
        raise CurriculumError("model.path '/nowhere' does not exist on node n2")

    actor = RoleActor(factory, threads=1)  # not raised: Ray would rebuild the actor again and again
    for call in (actor.current_incarnation, lambda: actor.call(actor.incarnation, "learn")):
        with pytest.raises(CurriculumError, match="does not exist on node n2"):
            call()
