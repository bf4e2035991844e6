"""The golden and reference tests discover their cases from folders; an empty or missing folder must fail loudly
instead of letting every parametrized case vanish into a skip."""
from __future__ import annotations

from egostream.testing import extractor_reference_dir, golden_dir, reference_dir


def test_golden_folder_holds_cases() -> None:
    folder = golden_dir()
    assert folder.is_dir(), f"golden folder {folder} is missing (set EGOSTREAM_GOLDEN_DIR)"
    assert sorted(folder.glob("*__*.json")), f"no <case>__<protocol>.json files in {folder}"


def test_reference_folder_holds_cases() -> None:
    folder = reference_dir()
    assert (folder / "manifest.json").is_file(), f"{folder}/manifest.json is missing (set EGOSTREAM_REFERENCE_DIR)"
    assert sorted((folder / "checkpoints").glob("*.pth")), f"no checkpoints in {folder}/checkpoints"


def test_extractor_reference_folder_holds_cases() -> None:
    folder = extractor_reference_dir()
    assert (folder / "manifest.json").is_file(), (f"{folder}/manifest.json is missing "
                                                  "(set EGOSTREAM_EXTRACTOR_REFERENCE_DIR)")
    assert sorted((folder / "checkpoints").iterdir()), f"no checkpoints in {folder}/checkpoints"
