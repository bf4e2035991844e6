"""Class names for the ids the heads predict (LTA verbs and nouns, MQ classes), as the readouts name them.

Kept apart from :mod:`egostream.stream.schema` so that the result schema stays a leaf module: only
:meth:`LabelNames.ego4d` reads the Ego4D vocabularies shipped with :mod:`egostream.ego4d`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from egostream.stream.schema import Label

__all__ = ["LabelNames"]


@dataclass(frozen=True)
class LabelNames:
    """Class names for the ids the heads predict: LTA verbs and nouns, MQ classes.

    An id past the end of a vocabulary (a model trained on a larger one) is named ``"<kind>#<id>"``.
    """

    verbs: tuple[str, ...] = ()
    nouns: tuple[str, ...] = ()
    moments: tuple[str, ...] = ()

    @classmethod
    def ego4d(cls) -> LabelNames:
        """The Ego4D v1 vocabularies shipped with the package (115 verbs, 478 nouns, 110 MQ classes)."""
        from egostream.ego4d.synthetic import vocabulary_path
        from egostream.ego4d.taxonomy import load_lta_taxonomy, load_mq_labels

        taxonomy = load_lta_taxonomy(vocabulary_path("fho_lta_taxonomy.json"))
        return cls(taxonomy.verbs, taxonomy.nouns, load_mq_labels(vocabulary_path("mq_labels.tsv")).names)

    def verb(self, class_id: int) -> Label:
        return Label(int(class_id), _name(self.verbs, class_id, "verb"))

    def noun(self, class_id: int) -> Label:
        return Label(int(class_id), _name(self.nouns, class_id, "noun"))

    def moment(self, class_id: int) -> Label:
        return Label(int(class_id), _name(self.moments, class_id, "moment"))


def _name(names: Sequence[str], class_id: int, kind: str) -> str:
    return names[class_id] if 0 <= class_id < len(names) else f"{kind}#{class_id}"
