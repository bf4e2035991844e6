"""Ego4D label vocabularies: the FHO/LTA verb and noun taxonomy and the Moment Queries class map.

Files (see :mod:`egostream.ego4d.layout` for where they live):

- ``fho_lta_taxonomy.json``: ``{"verbs": [str], "nouns": [str]}``; the list index is the class id used by
  ``verb_label`` / ``noun_label``. Ego4D v1 has 115 verbs and 478 nouns (v2: 117 / 521). Names are stripped of
  surrounding whitespace, as the authors do (sapeirone/hier-egopack@4fff4e5:data/ego4d/Ego4dDataset.py, L101-102).
- ``mq_labels.tsv``: one ``NNN<TAB>label`` line per Moment Queries class, 110 classes, ids 000-109. Seven labels are
  wrapped in literal double quotes; like the authors' ``pandas.read_csv(sep="\\t")`` followed by ``str.strip``
  (sapeirone/hier-egopack@4fff4e5:data/ego4d/MQ.py, L58-61) we store the unquoted name, and keep the raw quoted
  form too (ActionFormer's ``ego4d_label_map.txt`` keys keep the quotes).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

from egostream.errors import InputError
from egostream.ego4d.json_records import load_json_record, read_utf8

__all__ = [
    "LTA_V1_NUM_VERBS", "LTA_V1_NUM_NOUNS", "MQ_NUM_CLASSES",
    "LTATaxonomy", "MQLabelMap", "load_lta_taxonomy", "load_mq_labels", "unquote_mq_label",
]

LTA_V1_NUM_VERBS = 115
LTA_V1_NUM_NOUNS = 478
MQ_NUM_CLASSES = 110


@dataclass(frozen=True)
class LTATaxonomy:
    """The FHO verb and noun vocabularies; ``verbs[i]`` is the name of verb class ``i``."""

    verbs: tuple[str, ...]
    nouns: tuple[str, ...]
    path: Path | None = None
    _verb_ids: dict[str, int] = field(init=False, repr=False, compare=False)
    _noun_ids: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_verb_ids", _first_index(self.verbs))
        object.__setattr__(self, "_noun_ids", _first_index(self.nouns))

    @property
    def num_verbs(self) -> int:
        return len(self.verbs)

    @property
    def num_nouns(self) -> int:
        return len(self.nouns)

    def verb_id(self, name: str) -> int:
        """The class id of verb ``name``; KeyError when the taxonomy has no such verb."""
        return self._verb_ids[name.strip()]

    def noun_id(self, name: str) -> int:
        """The class id of noun ``name``; KeyError when the taxonomy has no such noun."""
        return self._noun_ids[name.strip()]

    def verb_name(self, class_id: int) -> str:
        return self.verbs[_checked_id(class_id, len(self.verbs), "verb")]

    def noun_name(self, class_id: int) -> str:
        return self.nouns[_checked_id(class_id, len(self.nouns), "noun")]


@dataclass(frozen=True)
class MQLabelMap:
    """The Moment Queries classes; ``names[i]`` is class ``i`` without the quotes, ``raw_names[i]`` as in the file."""

    names: tuple[str, ...]
    raw_names: tuple[str, ...]
    path: Path | None = None
    _ids: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ids", _first_index(self.names))

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def class_id(self, label: str) -> int:
        """The class id of an annotation ``label``, quoted or not; KeyError when unknown."""
        return self._ids[unquote_mq_label(label)]

    def __contains__(self, label: object) -> bool:
        return isinstance(label, str) and unquote_mq_label(label) in self._ids


def unquote_mq_label(label: str) -> str:
    """Strip the literal double quotes some MQ labels carry (``'"a,_b"'`` -> ``'a,_b'``).

    Matches the authors' ``label.lstrip('"').rstrip('"')`` on annotation labels
    (sapeirone/hier-egopack@4fff4e5:data/ego4d/MQ.py, L123) and the CSV unquoting of ``mq_labels.tsv``.
    """
    return label.lstrip('"').rstrip('"')


def load_lta_taxonomy(path: str | PathLike[str], expected_sizes: tuple[int, int] | None = None) -> LTATaxonomy:
    """Read ``fho_lta_taxonomy.json``.

    ``expected_sizes`` = (verbs, nouns), e.g. ``(LTA_V1_NUM_VERBS, LTA_V1_NUM_NOUNS)``, checks the vocabulary sizes
    as the authors' datasets assert them (hier-egopack@4fff4e5:data/ego4d/AR.py, L63-64).
    """
    record = load_json_record(path)
    verbs = tuple(name.strip() for name in record.string_list("verbs"))
    nouns = tuple(name.strip() for name in record.string_list("nouns"))
    if expected_sizes is not None:
        for key, names, expected in (("verbs", verbs, expected_sizes[0]), ("nouns", nouns, expected_sizes[1])):
            if len(names) != expected:
                raise record.error(key, f"expected {expected} {key}, found {len(names)}")
    return LTATaxonomy(verbs, nouns, Path(path))


def load_mq_labels(path: str | PathLike[str], expected_num_classes: int | None = MQ_NUM_CLASSES) -> MQLabelMap:
    """Read ``mq_labels.tsv`` (``NNN<TAB>label`` per line, blank lines ignored), ordered by id.

    Ids must be exactly 0..n-1 (each once); the authors sort the rows by id
    (hier-egopack@4fff4e5:data/ego4d/MQ.py, L60), so the file order does not matter.
    """
    path = Path(path)
    lines = read_utf8(path).splitlines()
    by_id: dict[int, str] = {}
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) != 2 or not columns[0].strip().isdigit():
            raise InputError(path, f"line {line_number}", f"expected 'NNN<TAB>label', got {line!r:.80}")
        class_id = int(columns[0])
        if class_id in by_id:
            raise InputError(path, f"line {line_number}", f"class id {class_id} appears twice")
        by_id[class_id] = columns[1].strip()
    if sorted(by_id) != list(range(len(by_id))):
        raise InputError(path, "id", f"class ids must be 0..{len(by_id) - 1} without gaps")
    if expected_num_classes is not None and len(by_id) != expected_num_classes:
        raise InputError(path, None, f"expected {expected_num_classes} classes, found {len(by_id)}")
    raw_names = tuple(by_id[class_id] for class_id in range(len(by_id)))
    return MQLabelMap(tuple(unquote_mq_label(name) for name in raw_names), raw_names, path)


def _first_index(names: tuple[str, ...]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for index, name in enumerate(names):
        ids.setdefault(name, index)
    return ids


def _checked_id(class_id: int, size: int, kind: str) -> int:
    if not 0 <= class_id < size:
        raise KeyError(f"unknown {kind} id {class_id} (taxonomy has {size} {kind}s)")
    return class_id
