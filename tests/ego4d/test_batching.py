"""Collation of protocol samples into model inputs: hand-computed fields, the authors' conventions shown by the
reference fixture inputs, and a batch composition fixed by the seed."""
from __future__ import annotations

import pytest
import torch

from egostream.ego4d.batching import AUTHORS_PAD_ROWS, TaskDataset, batch_loader, collate, mq_duration_s, sample_item
from egostream.ego4d.features import FeatureSpec, FeatureStore
from egostream.ego4d.protocol import ARSample, LTASample, MQSample, OSCCSample, PNRSample, feature_window
from egostream.errors import InputError
from egostream.testing import reference_dir

SPEC = FeatureSpec("toy", dim=3)
ROWS = {"va": torch.arange(60, dtype=torch.float32).reshape(20, 3), "vb": -torch.arange(30.0).reshape(10, 3)}


@pytest.fixture()
def store(tmp_path) -> FeatureStore:
    for uid, rows in ROWS.items():
        torch.save(rows, tmp_path / f"{uid}.pt")
    return FeatureStore(tmp_path, SPEC.name, expected_dim=3)


def ar_sample(video: str, start: int, end: int, segments: list[list[float]], verbs: list[int]) -> ARSample:
    return ARSample(video, f"clip-{video}", start, end, feature_window(video, start, end, SPEC),
                    tuple(range(len(verbs))), torch.tensor(segments), torch.tensor(verbs),
                    torch.tensor(verbs) + 100, SPEC)


def test_ar_collation_by_hand(store) -> None:
    # frames [40, 100): rows 2..5 (4 nodes); frames [0, 48): rows 0..2 (3 nodes).
    first = ar_sample("va", 40, 100, [[0.1, 1.0], [1.2, 2.0]], [3, 4])
    second = ar_sample("vb", 0, 48, [[0.0, 0.5]], [7])
    batch = collate([sample_item(first, store), sample_item(second, store)])
    assert batch.task == "ar" and batch.num_videos == 2 and batch.samples == [first, second]
    torch.testing.assert_close(batch.videos.x, torch.cat([ROWS["va"][2:6], ROWS["vb"][0:3]]))
    period = 16 / 30
    wanted_pos = torch.tensor([0.5, 1.5, 2.5, 3.5, 0.5, 1.5, 2.5]) * period
    torch.testing.assert_close(batch.videos.pos, wanted_pos)
    assert batch.videos.video.tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert batch.videos.indices.tolist() == [0, 1, 2, 3, 0, 1, 2]
    torch.testing.assert_close(batch.inputs.segments, torch.tensor([[0.1, 1.0], [1.2, 2.0], [0.0, 0.5]]))
    assert batch.inputs.segment_video.tolist() == [0, 0, 1]
    assert batch.inputs.verb_labels.tolist() == [3, 4, 7]
    assert batch.inputs.noun_labels.tolist() == [103, 104, 107]
    assert batch.inputs.labels is None and batch.inputs.duration is None


def test_lta_oscc_mq_pnr_fields_by_hand(store) -> None:
    lta = LTASample("clip-va_1", "va", "clip-va", 1, 16, 64, feature_window("va", 16, 64, SPEC), (0, 1), (2, 3),
                    torch.tensor([5, 6]), torch.tensor([8, 9]), SPEC)
    lta_batch = collate([sample_item(lta, store), sample_item(lta, store)])
    assert lta_batch.inputs.verb_labels.tolist() == [5, 6, 5, 6]
    assert lta_batch.inputs.noun_labels.tolist() == [8, 9, 8, 9]
    torch.testing.assert_close(lta_batch.videos.pos[:3], torch.round(torch.tensor([0.5, 1.5, 2.5]) * 16 / 30,
                                                                      decimals=3))

    oscc = OSCCSample("u0", "vb", "c", 0, 160, feature_window("vb", 0, 160, SPEC), ("u0", "u1"),
                      torch.tensor([[0.0, 2.0], [2.0, 4.0]]), torch.tensor([1, 0]), SPEC)
    oscc_batch = collate([sample_item(oscc, store)])
    assert oscc_batch.inputs.labels.tolist() == [1, 0] and oscc_batch.inputs.segment_video.tolist() == [0, 0]
    assert len(oscc_batch.videos.x) == 10

    # clip frames [20, 200): rows 1..11, but vb has only 10 rows -> 9 nodes; grid offset 20 mod 16 = 4 frames.
    mq = MQSample("vb", "clip-m", 20, 200, feature_window("vb", 20, 200, SPEC), torch.tensor([[1.0, 3.0]]),
                  torch.tensor([[0.9, 2.9]], dtype=torch.float64), torch.tensor([2]), ("x",), SPEC)
    mq_item = sample_item(mq, store)
    assert len(mq_item.x) == 9
    assert mq_item.duration_s == pytest.approx(AUTHORS_PAD_ROWS * 16 / 30)
    assert mq_duration_s(mq, 9, None) == pytest.approx(4 / 30 + 180 / 30)
    assert mq_duration_s(mq, 2000) == pytest.approx(2000 * 16 / 30)
    mq_batch = collate([mq_item, mq_item])
    assert mq_batch.inputs.duration.dtype == torch.float32 and len(mq_batch.inputs.duration) == 2
    assert mq_batch.inputs.segment_video.tolist() == [0, 1] and mq_batch.inputs.labels.tolist() == [2, 2]

    rows = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7])
    target = torch.zeros(16)
    target[5] = 1
    pnr = PNRSample("p", "va", "c_0", 30, 150, 1.0, 5.0, 100, 30, 150, torch.arange(30, 150, 7.5).long(), rows, 5,
                    target, torch.tensor([[0.0, 4.0]]), 2.3, SPEC)
    pnr_batch = collate([sample_item(pnr, store), sample_item(pnr, store)])
    torch.testing.assert_close(pnr_batch.videos.x[:16], ROWS["va"][rows])
    torch.testing.assert_close(pnr_batch.videos.pos[:16], torch.arange(16) * 16 / 30)
    assert pnr_batch.inputs.labels.tolist() == target.tolist() * 2
    assert pnr_batch.inputs.indices.tolist() == list(range(16)) * 2
    assert pnr_batch.inputs.candidate_frames.shape == (2, 16)
    assert pnr_batch.inputs.start_frame.tolist() == [30, 30]


def test_mixed_tasks_and_empty_batches_are_refused(store) -> None:
    ar = sample_item(ar_sample("va", 0, 64, [[0.0, 1.0]], [1]), store)
    oscc = sample_item(OSCCSample("u", "va", "c", 0, 64, feature_window("va", 0, 64, SPEC), ("u",),
                                  torch.tensor([[0.0, 1.0]]), torch.tensor([1]), SPEC), store)
    with pytest.raises(InputError, match="one task"):
        collate([ar, oscc])
    with pytest.raises(InputError, match="empty"):
        collate([])


def test_batch_composition_is_fixed_by_the_seed(store) -> None:
    samples = [ar_sample("va", 16 * i, 16 * i + 64, [[0.0, 1.0]], [i]) for i in range(12)]
    dataset = TaskDataset(samples, store)

    def composition(seed: int, shuffle: bool) -> list[list[int]]:
        return [batch.inputs.verb_labels.tolist() for batch in batch_loader(dataset, 5, shuffle=shuffle, seed=seed)]

    assert composition(0, False) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]
    assert composition(3, True) == composition(3, True)
    assert composition(3, True) != composition(4, True)
    assert sorted(sum(composition(3, True), [])) == list(range(12))


def _reference_input(name: str) -> dict[str, torch.Tensor]:
    path = reference_dir() / "inputs" / f"{name}.pt"
    if not path.exists():
        pytest.skip(f"no reference input {name}")
    return torch.load(path, map_location="cpu", weights_only=True)


def _reference_sample_kinds() -> list[str]:
    """The task input batches of the reference folder (``inputs/<task>.pt``)."""
    return sorted(path.stem for path in (reference_dir() / "inputs").glob("*.pt")
                  if path.stem in ("ar", "lta", "oscc", "pnr", "mq"))


@pytest.mark.parametrize("name", _reference_sample_kinds())
def test_positions_and_mq_duration_follow_the_reference_inputs(name: str, store) -> None:
    """Per-task node times (centred, LTA rounded, PNR uncentred) and the MQ padded duration, as the authors'
    collated inputs hold them."""
    batch = _reference_input(name)
    mask, video = batch["input.mask"], batch["input.batch"]
    spec = FeatureSpec("toy", dim=int(batch["input.x"].shape[-1]))
    for b in range(int(video.max()) + 1):
        rows = mask & (video == b)
        n = int(rows.sum())
        window = feature_window("va", 0, 16 * n, spec)
        sample = {
            "ar": lambda: ARSample("va", "c", 0, 16 * n, window, (), torch.zeros(0, 2), torch.zeros(0),
                                   torch.zeros(0), spec),
            "oscc": lambda: OSCCSample("u", "va", "c", 0, 16 * n, window, (), torch.zeros(0, 2), torch.zeros(0),
                                       spec),
            "lta": lambda: LTASample("k", "va", "c", 0, 0, 16 * n, window, (), (), torch.zeros(0), torch.zeros(0),
                                     spec),
            "mq": lambda: MQSample("va", "c", 0, 16 * n, window, torch.zeros(0, 2), torch.zeros(0, 2),
                                   torch.zeros(0), (), spec),
            "pnr": lambda: PNRSample("p", "va", "c", 0, 0, 0.0, 0.0, 0, 0, 0, torch.zeros(16), torch.zeros(16), 0,
                                     torch.zeros(16), torch.zeros(1, 2), 0.0, spec),
        }[name]()
        torch.testing.assert_close(sample.node_positions_s(n), batch["input.pos"][rows], atol=1e-6, rtol=0)
        assert batch["input.indices"][rows].tolist() == list(range(n))
        if name == "mq":
            assert mq_duration_s(sample, n) == pytest.approx(float(batch["input.duration"][b]), abs=1e-4)
