"""Training stages: single-task, multi-task and EgoPack, with the authors' recipes (``configs/train/``)."""
from egostream.train.loop import TrainResult, train
from egostream.train.recipe import EgoPackConfig, TrainConfig, load_recipe

__all__ = ["train", "TrainResult", "TrainConfig", "EgoPackConfig", "load_recipe"]
