"""Where the Ego4D files live: the authors' directory layout.

The authors' datasets are ``torch_geometric`` datasets whose ``raw_dir`` is ``<root>/raw`` with ``root: data/ego4d``
(sapeirone/hier-egopack@4fff4e5:data/ego4d/Ego4dDataset.py, L47/L81/L96; configs/components/dataset/ego4d/*.yaml).
We call that ``raw`` folder DATA; :meth:`Ego4dLayout.from_root` accepts either DATA itself or the folder holding
``raw/``::

    DATA/annotations/v1/fho_lta_{split}.json          LTA and AR actions        (Ego4dDataset.py L96, LTA.py L104)
    DATA/annotations/v1/fho_lta_taxonomy.json         verbs / nouns             (Ego4dDataset.py L96)
    DATA/annotations/v1/fho_oscc-pnr_{split}.json     OSCC and PNR samples      (OSCC.py L57, PNR.py L65)
    DATA/annotations/v1/moments_{split}.json          MQ moments                (MQ.py L72)
    DATA/annotations/mq_labels.tsv                    110 MQ classes, NOT under v1/ (MQ.py L58);
                                                      DATA/annotations/v1/mq_labels.tsv is accepted as well
    DATA/ego4d.json                                   video metadata (optional; DATA/annotations/v1/ego4d.json
                                                      is accepted as well); the authors never read it
    DATA/features/<name>/<video_uid>.pt               one float tensor [T, D] per video, row t = frames
                                                      [16 t, 16 t + window) at 30 fps (Ego4dDataset.py L81)

``split`` is ``train``, ``val`` or ``test_unannotated``. The authors' datasets also require
``annotations/v1/narration.json``; its narrations feed no head, loss or metric, so egostream does not read it.
"""
from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path

__all__ = ["Ego4dLayout"]


@dataclass(frozen=True)
class Ego4dLayout:
    """Paths of the Ego4D files under the data folder ``data_dir`` (the authors' ``raw_dir``)."""

    data_dir: Path
    version: int = 1

    @classmethod
    def from_root(cls, root: str | PathLike[str], version: int = 1) -> Ego4dLayout:
        """``root`` is either the data folder or the authors' dataset root that holds it as ``raw/``."""
        root = Path(root)
        nested = root / "raw"
        return cls(nested if nested.is_dir() else root, version)

    @property
    def annotations_dir(self) -> Path:
        return self.data_dir / "annotations" / f"v{self.version}"

    def annotation_file(self, stem: str, split: str) -> Path:
        """``annotations/v{version}/<stem>_<split>.json`` (a task's ``annotation_file`` stem, e.g. ``fho_lta``)."""
        return self.annotations_dir / f"{stem}_{split}.json"

    def lta_annotations(self, split: str) -> Path:
        return self.annotations_dir / f"fho_lta_{split}.json"

    def lta_taxonomy(self) -> Path:
        return self.annotations_dir / "fho_lta_taxonomy.json"

    def state_change_annotations(self, split: str) -> Path:
        return self.annotations_dir / f"fho_oscc-pnr_{split}.json"

    def moments_annotations(self, split: str) -> Path:
        return self.annotations_dir / f"moments_{split}.json"

    def mq_labels(self) -> Path:
        """``annotations/mq_labels.tsv`` (the authors' place), else ``annotations/v{version}/mq_labels.tsv``."""
        return _first_existing(self.data_dir / "annotations" / "mq_labels.tsv", self.annotations_dir / "mq_labels.tsv")

    def video_metadata(self) -> Path:
        """``ego4d.json`` in the data folder, else in ``annotations/v{version}/``."""
        return _first_existing(self.data_dir / "ego4d.json", self.annotations_dir / "ego4d.json")

    def features_dir(self, name: str) -> Path:
        return self.data_dir / "features" / name


def _first_existing(preferred: Path, alternative: Path) -> Path:
    """``preferred`` unless only ``alternative`` exists (so a missing file is reported at the preferred path)."""
    return alternative if not preferred.exists() and alternative.exists() else preferred
