"""The toy base model of `make run` (configs/tiny.yaml): at least 95% on the levels it was trained
on in full, measured on its large held-out set (50 problems at level 1, 500 at levels 2-3, 100 at
levels 4-5); partly right on a level it saw a few examples of (the Solver's learning band); and
near zero on the levels above (the room the curriculum has to work in).

About 2.5 minutes on 2 cores: `make test-slow` or `pytest -m slow tests/slow/test_pretrain_target.py`.
"""

from pathlib import Path

import pytest

from curriculum.config import load_config
from curriculum.training.pretrain import pretrain

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_make_run_base_model_masters_its_levels_and_leaves_room_above(tmp_path):
    config = load_config(ROOT / "configs" / "tiny.yaml", [f"model.cache_dir={tmp_path}"])
    result = pretrain(config, progress=False)
    by_level = result.evaluation.by_level
    assert config.pretrain.levels == [1, 2, 3]  # levels 1-2 in full, a few level-3 examples
    for level in (1, 2):
        assert by_level[level] >= 0.95, f"level {level}: {by_level[level]:.1%}"
    assert 0.05 <= by_level[3] <= 0.5, f"level 3: {by_level[3]:.1%}"
    for level in (4, 5):
        assert by_level[level] <= 0.1, f"level {level}: {by_level[level]:.0%}"
    assert result.evaluation.n == 2 * (25 + 250 + 250 + 50 + 50)
