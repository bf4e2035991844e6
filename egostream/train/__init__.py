"""Training stages: single-task, multi-task, EgoPack and translation (EgoT2-s), with the authors' recipes
(``configs/train/``)."""
from egostream.train.loop import TrainResult, train
from egostream.train.recipe import EgoPackConfig, TrainConfig, load_recipe

__all__ = ["train", "TrainResult", "TrainConfig", "EgoPackConfig", "load_recipe"]
