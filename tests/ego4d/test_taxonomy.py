from pathlib import Path

import pytest

from egostream.ego4d.taxonomy import (LTA_V1_NUM_NOUNS, LTA_V1_NUM_VERBS, MQ_NUM_CLASSES, load_lta_taxonomy,
                                      load_mq_labels)
from egostream.errors import InputError
from egostream.testing import ego4d_fixtures_dir


def test_lta_v1_taxonomy_sizes_and_lookup():
    taxonomy = load_lta_taxonomy(ego4d_fixtures_dir() / "fho_lta_taxonomy.json", (LTA_V1_NUM_VERBS, LTA_V1_NUM_NOUNS))
    assert (taxonomy.num_verbs, taxonomy.num_nouns) == (115, 478)
    # ids fixed by independent evidence (fixtures README: EgoT2 build_vocab.py)
    assert taxonomy.noun_name(19) == "bat_(sports)" and taxonomy.noun_name(320) == "pot_(planter)"
    assert taxonomy.noun_id("nut_(tool)") == 271
    for class_id in (0, 57, 114):
        assert taxonomy.verb_id(taxonomy.verb_name(class_id)) == class_id
    with pytest.raises(KeyError):
        taxonomy.verb_name(115)


def test_lta_taxonomy_wrong_size_names_the_field(tmp_path: Path):
    path = tmp_path / "fho_lta_taxonomy.json"
    path.write_text('{"verbs": ["a", "b"], "nouns": ["c"]}')
    with pytest.raises(InputError, match="verbs: expected 115 verbs, found 2"):
        load_lta_taxonomy(path, (115, 478))


def test_mq_labels_unquoted_and_raw():
    labels = load_mq_labels(ego4d_fixtures_dir() / "mq_labels.tsv")
    assert labels.num_classes == MQ_NUM_CLASSES
    quoted = [i for i, raw in enumerate(labels.raw_names) if raw.startswith('"')]
    assert len(quoted) == 7
    for class_id in quoted:
        name = labels.names[class_id]
        assert labels.raw_names[class_id] == f'"{name}"'
        assert labels.class_id(name) == labels.class_id(f'"{name}"') == class_id


def test_mq_labels_sorted_by_id_and_gaps_rejected(tmp_path: Path):
    path = tmp_path / "mq_labels.tsv"
    path.write_text('001\tb\n000\t"a,_x"\n')
    labels = load_mq_labels(path, expected_num_classes=2)
    assert labels.names == ("a,_x", "b")
    path.write_text("000\ta\n002\tb\n")
    with pytest.raises(InputError, match="without gaps"):
        load_mq_labels(path, expected_num_classes=None)
