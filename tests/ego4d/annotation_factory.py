"""Minimal valid Ego4D v1 annotation records (official field names) and writers for tests."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch


def lta_action(clip_uid: str, action_idx: int, start: int, end: int, *, video_uid: str = "video_a",
               clip_parent_start_frame: int = 0, clip_parent_end_frame: int = 9000, verb_label: int | None = 0,
               noun_label: int | None = 0) -> dict[str, Any]:
    """One ``fho_lta_*.json`` record; ``start`` / ``end`` are clip frames (action_clip_start/end_frame)."""
    record: dict[str, Any] = {
        "clip_uid": clip_uid, "video_uid": video_uid, "action_idx": action_idx,
        "clip_parent_start_sec": clip_parent_start_frame / 30, "clip_parent_end_sec": clip_parent_end_frame / 30,
        "clip_parent_start_frame": clip_parent_start_frame, "clip_parent_end_frame": clip_parent_end_frame,
        "action_clip_start_sec": start / 30, "action_clip_end_sec": end / 30,
        "action_clip_start_frame": start, "action_clip_end_frame": end,
    }
    if verb_label is not None:
        record.update(verb="verb", verb_label=verb_label)
    if noun_label is not None:
        record.update(noun="noun", noun_label=noun_label)
    return record


def state_change_record(unique_id: str, clip_id: str, start: int, end: int, *, video_uid: str = "video_a",
                        state_change: bool | None = True, pnr_frame: int | None = None) -> dict[str, Any]:
    """One ``fho_oscc-pnr_*.json`` record over parent frames [start, end)."""
    record: dict[str, Any] = {
        "unique_id": unique_id, "video_uid": video_uid, "clip_id": clip_id, "clip_uid": f"clip_{clip_id}",
        "parent_start_sec": start / 30, "parent_end_sec": end / 30,
        "parent_start_frame": start, "parent_end_frame": end,
        "parent_pnr_frame": pnr_frame if pnr_frame is not None else ((start + end) // 2 if state_change else None),
        "clip_start_sec": 0.0, "clip_end_sec": (end - start) / 30, "clip_start_frame": 0, "clip_end_frame": end - start,
    }
    if state_change is not None:
        record["state_change"] = state_change
    return record


def moment(label: str, start_frame: int, end_frame: int, clip_start_frame: int, *,
           primary: bool = True) -> dict[str, Any]:
    """One moment of a clip starting at parent frame ``clip_start_frame``."""
    return {
        "label": label, "primary": primary,
        "start_time": (start_frame - clip_start_frame) / 30, "end_time": (end_frame - clip_start_frame) / 30,
        "video_start_time": start_frame / 30, "video_end_time": end_frame / 30,
        "video_start_frame": start_frame, "video_end_frame": end_frame,
    }


def moments_clip(clip_uid: str, start_frame: int, end_frame: int,
                 annotators: list[list[dict[str, Any]]] | None) -> dict[str, Any]:
    clip: dict[str, Any] = {
        "clip_uid": clip_uid, "video_start_sec": start_frame / 30, "video_end_sec": end_frame / 30,
        "video_start_frame": start_frame, "video_end_frame": end_frame,
    }
    if annotators is not None:
        clip["annotations"] = [{"annotator_uid": f"ann{i}", "labels": labels} for i, labels in enumerate(annotators)]
    return clip


def write_json(path: Path, document: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def write_features(directory: Path, video_uid: str, num_rows: int, dim: int) -> torch.Tensor:
    """Save a [num_rows, dim] tensor whose row t is filled with the value t."""
    directory.mkdir(parents=True, exist_ok=True)
    features = torch.arange(num_rows, dtype=torch.float32)[:, None].expand(num_rows, dim).contiguous()
    torch.save(features, directory / f"{video_uid}.pt")
    return features
