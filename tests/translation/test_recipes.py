"""The translation recipes carry EgoT2's per-task translator sizes and solver (facebookresearch/EgoT2@686c305:
HOI/configs/pnr/ts_pnr.yaml, pnr/ts_oscc.yaml, recognition/ts_ar.yaml, lta/ts_lta_4task.yaml) and load as typed
recipes of the translation stage."""
from __future__ import annotations

import pytest

from egostream.errors import InputError
from egostream.train.recipe import default_recipe_path, load_recipe

#: task -> (d, layers, feature dropout, optimizer, epochs): the EgoT2 recipe values, copied by hand.
EGOT2 = {"pnr": (128, 6, 0.5, "adamw", 40), "oscc": (256, 5, 0.1, "adamw", 20), "ar": (128, 3, 0.1, "sgd", 30),
         "lta": (1024, 1, 0.5, "adam", 50)}


@pytest.mark.parametrize("task", sorted(EGOT2))
def test_recipe_has_egot2_sizes(task: str) -> None:
    recipe = load_recipe("translation", [task], overrides=["translation.sources=[multi.pt]"])
    assert default_recipe_path("translation", [task]).name == f"translation_{task}.yaml"
    d, layers, dropout, optimizer, epochs = EGOT2[task]
    t = recipe.translation
    assert (t.d_model, t.num_layers, t.num_heads, t.feature_dropout) == (d, layers, 8, dropout)
    assert (recipe.optimizer.name, recipe.optimizer.lr, recipe.num_epochs, recipe.batch_size) == (
        optimizer, 1e-4, epochs, 32)
    assert [str(path) for path in t.sources] == ["multi.pt"]


def test_translation_stage_trains_one_task() -> None:
    with pytest.raises(InputError, match="trains one task"):
        load_recipe("translation", ["ar", "oscc"], overrides=["translation.sources=[multi.pt]"])
    with pytest.raises(InputError, match="num_heads"):
        load_recipe("translation", ["ar"], overrides=["translation.num_heads=5"])
