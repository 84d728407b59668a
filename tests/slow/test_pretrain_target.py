"""The toy base model with the default recipe: strong on the levels it was trained on,
near zero two levels above them (the room the curriculum has to work in).

Minutes on a laptop CPU: `pytest -m slow tests/slow/test_pretrain_target.py`.
"""

import pytest

from curriculum.config import Config
from curriculum.training.pretrain import pretrain


@pytest.mark.slow
def test_default_pretraining_leaves_room_above_the_trained_levels(tmp_path):
    config = Config.model_validate({"model": {"cache_dir": str(tmp_path)}})
    result = pretrain(config, progress=False)
    by_level = result.evaluation.by_level
    trained = config.pretrain.levels
    for level in trained:
        assert by_level[level] >= 0.8, f"level {level}: {by_level[level]:.0%}"
    for level in (4, 5):
        assert by_level[level] <= 0.1, f"level {level}: {by_level[level]:.0%}"
