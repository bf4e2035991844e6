"""Long-Term Anticipation samples: observe ``num_input_actions`` consecutive actions, forecast the next ``Z``.

As sapeirone/hier-egopack@4fff4e5:data/ego4d/LTA.py: records grouped by ``clip_uid`` (first-appearance order),
sorted by ``action_idx`` (L131); window i observes actions [i, i + num_input_actions) and forecasts the next Z
(L138-145). The nodes are the feature rows of the observed span, parent-video frames
[first observed start, last observed end) (L136/L147, L187-196), at (0.5 + i) * 16 / 30 s rounded to 3 decimals
(L218). The sample key is ``{clip_uid}_{action_idx of the last observed action}`` (L147; utils/meters/ego4d/lta.py
L142), the key of the official submission.

Protocol switch (number of windows per clip of N actions):

- ``hier-egopack``: ``N - num_input_actions - Z`` windows in train/val (LTA.py L138: the last possible window is
  dropped), ``N - num_input_actions`` windows in test splits (L134, the forecast part may be shorter than Z).
- ``official``: ``N - num_input_actions - Z + 1`` windows in every split (EGO4D/forecasting@HEAD:
  ego4d_forecasting/datasets/ptv_dataset_helper.py, clip_forecasting_dataset).

Test splits carry no labels: the future labels are then empty.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from egostream.ego4d.annotations import LTAAction, LTAAnnotations, read_lta_annotations
from egostream.ego4d.features import FeatureSpec
from egostream.ego4d.layout import Ego4dLayout
from egostream.ego4d.protocol.builders import SAMPLE_BUILDERS, ProtocolName, check_protocol, is_test_split
from egostream.ego4d.protocol.grouping import group_in_order
from egostream.ego4d.protocol.windows import FeatureWindow, centred_node_positions_s, feature_window
from egostream.ego4d.taxonomy import LTA_V1_NUM_NOUNS, LTA_V1_NUM_VERBS, load_lta_taxonomy
from egostream.errors import InputError

__all__ = ["LTASample", "build_lta_samples", "load_lta_samples", "lta_window_count",
           "DEFAULT_NUM_INPUT_ACTIONS", "DEFAULT_NUM_FUTURE_ACTIONS"]

DEFAULT_NUM_INPUT_ACTIONS = 2
DEFAULT_NUM_FUTURE_ACTIONS = 20
POSITION_DECIMALS = 3


@dataclass(frozen=True, eq=False)
class LTASample:
    """One forecasting window: the observed span's feature rows and the Z future (verb, noun) labels.

    ``observed_action_idx`` / ``future_action_idx``: the ``action_idx`` of the observed and forecast actions;
    ``future_verb_labels`` / ``future_noun_labels`` int64 [Z] (empty in test splits). Frames are parent-video frames.
    """

    key: str
    video_uid: str
    clip_uid: str
    last_action_idx: int
    observed_start_frame: int
    observed_end_frame: int
    window: FeatureWindow
    observed_action_idx: tuple[int, ...]
    future_action_idx: tuple[int, ...]
    future_verb_labels: torch.Tensor
    future_noun_labels: torch.Tensor
    spec: FeatureSpec

    def node_positions_s(self, num_nodes: int) -> torch.Tensor:
        """float32 [n]: round((0.5 + i) * 16 / 30, 3) (LTA.py L218)."""
        return centred_node_positions_s(num_nodes, self.spec, decimals=POSITION_DECIMALS)


def lta_window_count(num_actions: int, num_input_actions: int, num_future_actions: int, split: str,
                     protocol: ProtocolName) -> int:
    """Number of forecasting windows of a clip of ``num_actions`` actions (see the module docstring)."""
    if check_protocol(protocol) == "official":
        count = num_actions - num_input_actions - num_future_actions + 1
    elif is_test_split(split):
        count = num_actions - num_input_actions  # hier-egopack@4fff4e5:data/ego4d/LTA.py L134
    else:
        count = num_actions - num_input_actions - num_future_actions  # LTA.py L138 (official: + 1)
    return max(0, count)


def build_lta_samples(annotations: LTAAnnotations, spec: FeatureSpec, split: str, *,
                      protocol: ProtocolName = "hier-egopack",
                      num_input_actions: int = DEFAULT_NUM_INPUT_ACTIONS,
                      num_future_actions: int = DEFAULT_NUM_FUTURE_ACTIONS,
                      has_features: Callable[[str], bool] | None = None) -> list[LTASample]:
    """The LTA windows of one split, clip by clip in first-appearance order, windows in order."""
    labelled = not is_test_split(split)
    samples = []
    for clip_uid, actions in group_in_order(annotations.actions, lambda action: action.clip_uid).items():
        video_uid = actions[0].video_uid
        if has_features is not None and not has_features(video_uid):
            continue
        ordered = sorted(actions, key=lambda action: action.action_idx)
        for i in range(lta_window_count(len(ordered), num_input_actions, num_future_actions, split, protocol)):
            observed = ordered[i:i + num_input_actions]
            future = ordered[i + num_input_actions:i + num_input_actions + num_future_actions]
            start_frame, end_frame = observed[0].video_start_frame, observed[-1].video_end_frame
            samples.append(LTASample(
                key=f"{clip_uid}_{observed[-1].action_idx}",
                video_uid=video_uid,
                clip_uid=clip_uid,
                last_action_idx=observed[-1].action_idx,
                observed_start_frame=start_frame,
                observed_end_frame=end_frame,
                window=feature_window(video_uid, start_frame, end_frame, spec),
                observed_action_idx=tuple(action.action_idx for action in observed),
                future_action_idx=tuple(action.action_idx for action in future),
                future_verb_labels=_labels(annotations, future, "verb_label", labelled),
                future_noun_labels=_labels(annotations, future, "noun_label", labelled),
                spec=spec,
            ))
    return samples


@SAMPLE_BUILDERS.register("lta")
def load_lta_samples(layout: Ego4dLayout, split: str, spec: FeatureSpec, *, protocol: ProtocolName = "hier-egopack",
                     has_features: Callable[[str], bool] | None = None) -> list[LTASample]:
    """Read ``fho_lta_{split}.json`` (ids checked against the v1 taxonomy) and build the LTA windows (2 in, 20 out)."""
    taxonomy = load_lta_taxonomy(layout.lta_taxonomy(), (LTA_V1_NUM_VERBS, LTA_V1_NUM_NOUNS))
    return build_lta_samples(read_lta_annotations(layout.lta_annotations(split), taxonomy), spec, split,
                             protocol=protocol, has_features=has_features)


def _labels(annotations: LTAAnnotations, actions: list[LTAAction], key: str, labelled: bool) -> torch.Tensor:
    if not labelled:
        return torch.zeros(0, dtype=torch.long)
    values = []
    for action in actions:
        value = getattr(action, key)
        if value is None:
            raise InputError(annotations.path, key, f"action {action.clip_uid}#{action.action_idx} has no {key}")
        values.append(value)
    return torch.tensor(values, dtype=torch.long)
