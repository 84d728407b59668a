"""What a number depends on besides code and config: pinned CPU numerics, weights' fingerprints,
and a base-model cache key that moves with the libraries and the code that build the model."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from toy_models import SMALL

from curriculum import environment
from curriculum.config import Config
from curriculum.models import build_char_tokenizer, build_tiny_model, save_model
from curriculum.training.pretrain import BASE_MODEL_CODE, base_model_dir


def _numerics_in_child(env: dict[str, str]) -> dict[str, str]:
    code = (
        "import json; from curriculum.environment import pin_cpu_numerics; pinned = pin_cpu_numerics(); "
        "import torch; print(json.dumps({**pinned, 'capability': torch.backends.cpu.get_cpu_capability()}))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not environment._has_avx2(), reason="pinning applies to x86-64 CPUs with AVX2")
def test_numerics_are_pinned_before_torch_loads_and_a_user_setting_wins():
    base = {"PATH": "/usr/bin:/bin"}
    pinned = _numerics_in_child(base)
    assert pinned == {**environment.PINNED_NUMERICS, "capability": "AVX2"}
    mine = _numerics_in_child({**base, "ATEN_CPU_CAPABILITY": "default"})
    assert mine["ATEN_CPU_CAPABILITY"] == "default" and mine["capability"] == "DEFAULT"
    assert mine["MKL_CBWR"] == "AVX2"


def test_weights_fingerprint_is_equal_for_equal_weights_and_moves_with_one_changed_bit(tmp_path):
    import torch

    tokenizer = build_char_tokenizer()
    torch.manual_seed(0)
    model = build_tiny_model(SMALL, tokenizer)
    save_model(model, tokenizer, tmp_path / "a")
    save_model(model, tokenizer, tmp_path / "b", extra={"other": "metadata"})
    assert environment.weights_fingerprint(tmp_path / "a") == environment.weights_fingerprint(tmp_path / "b")
    with torch.no_grad():
        weight = next(model.parameters())
        weight.view(-1)[0] = torch.nextafter(weight.view(-1)[0], torch.tensor(float("inf")))
    save_model(model, tokenizer, tmp_path / "c")
    assert environment.weights_fingerprint(tmp_path / "c") != environment.weights_fingerprint(tmp_path / "a")
    with pytest.raises(FileNotFoundError, match="no .safetensors"):
        environment.weights_fingerprint(tmp_path)


def test_base_model_cache_key_moves_with_library_versions_code_and_numerics(tmp_path, monkeypatch):
    config = Config.model_validate({"model": {"cache_dir": str(tmp_path)}})
    folder = base_model_dir(config)
    versions = environment.library_versions()
    monkeypatch.setattr(environment, "library_versions", lambda: {**versions, "transformers": "0.0.1"})
    other_library = base_model_dir(config)
    monkeypatch.undo()
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    other_numerics = base_model_dir(config)
    monkeypatch.undo()
    monkeypatch.setattr(environment, "source_digest", lambda modules: "another-code")
    other_code = base_model_dir(config)
    assert len({folder, other_library, other_numerics, other_code}) == 4


def test_the_code_digest_covers_every_module_that_builds_or_evaluates_the_base():
    for name in BASE_MODEL_CODE:
        assert environment.source_digest([name])
    with pytest.raises(ValueError, match="no source"):
        environment.source_digest(["curriculum.no_such_module"])


def test_describe_names_the_machine_libraries_and_lock():
    described = environment.describe()
    assert described["cpu"] and described["threads"] >= 1
    assert described["libraries"]["torch"].startswith("2.")
    assert described["lock"] == environment.file_digest(Path(environment.LOCK_FILE))
