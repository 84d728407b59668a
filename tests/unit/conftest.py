"""Fixtures shared by the unit tests that train toy models; the helpers beside this file
(scripted_roles, llm_fakes, toy_models) are importable from every folder below it."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import pytest  # noqa: E402
from toy_models import SMALL  # noqa: E402


@pytest.fixture(scope="module")
def one_thread():
    """Toy-sized ops spend their time in thread hand-offs: on a busy 2-core box extra threads only
    add contention (8 s against 0.7 s a DPO round was measured)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def base_path(tmp_path_factory):
    """A freshly initialised SMALL model with the char tokenizer, saved as an HF folder."""
    import torch

    from curriculum.models import build_char_tokenizer, build_tiny_model, save_model

    torch.manual_seed(0)
    tokenizer = build_char_tokenizer()
    folder = tmp_path_factory.mktemp("base") / "tiny"
    save_model(build_tiny_model(SMALL, tokenizer), tokenizer, folder)
    return folder
