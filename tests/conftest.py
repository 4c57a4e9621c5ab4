"""Shared fixtures: real GRID footage (CC BY 4.0) shipped with the package and in ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE_GRID = REPO / "src" / "deepswap" / "data" / "grid"
TEST_DATA = REPO / "tests" / "data"
SHARED_DATA = Path(os.environ.get("DEEPSWAP_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def user_config_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh user folder (signing key, config.toml) for the whole run, never the real home's."""
    folder = tmp_path_factory.mktemp("user-config")
    previous = os.environ.get("DEEPSWAP_CONFIG_DIR")
    os.environ["DEEPSWAP_CONFIG_DIR"] = str(folder)
    yield folder
    if previous is None:
        del os.environ["DEEPSWAP_CONFIG_DIR"]
    else:
        os.environ["DEEPSWAP_CONFIG_DIR"] = previous


@pytest.fixture(scope="session")
def s1_clips() -> list[Path]:
    """Clips of GRID speaker s1 (person A in most tests), shipped with the package."""
    return sorted((PACKAGE_GRID / "s1").glob("*.mp4"))


@pytest.fixture(scope="session")
def speaker_clips() -> list[Path]:
    """One clip each of other GRID speakers (person B, bystanders), shipped with the package."""
    return sorted((PACKAGE_GRID / "speakers").glob("*.mp4"))


@pytest.fixture(scope="session")
def raw_mpg() -> Path:
    """A GRID clip in the corpus's original MPEG-1 form with MP2 audio."""
    return TEST_DATA / "lrwp9a.mpg"


@pytest.fixture(scope="session")
def photos() -> list[Path]:
    """Public-domain portraits (astronaut.png, grace_hopper.jpg)."""
    return sorted(p for p in TEST_DATA.iterdir() if p.suffix in (".png", ".jpg"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The full ../shared/data set (800 s1 clips); tests needing it skip when it is absent."""
    if not (SHARED_DATA / "grid" / "s1").is_dir():
        pytest.skip(f"{SHARED_DATA} not found (set DEEPSWAP_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def extracted_workspace(tmp_path_factory: pytest.TempPathFactory, s1_clips: list[Path], speaker_clips: list[Path]) -> Path:
    """A workspace with faces extracted: A = two s1 clips, B = speakers/lrwp9a.mp4, 128 px crops
    at 10 frames/s (about 60 faces of A, 30 of B). Shared by the face, train and convert tests;
    treat it as read-only (copy it with shutil.copytree to change it)."""
    from deepswap.extract import ExtractOptions, extract

    root = sample_workspace(tmp_path_factory.mktemp("extracted") / "ws", s1_clips, speaker_clips)
    extract(root, ExtractOptions(fps=10))
    return root


def sample_workspace(root: Path, s1_clips: list[Path], speaker_clips: list[Path]) -> Path:
    """A new workspace at 128 px crops with sources A = two s1 clips, B = speakers/lrwp9a.mp4."""
    from deepswap.sources import add_sources
    from deepswap.workspace import Workspace, init_workspace

    init_workspace(root, "s1", "lrwp9a")
    workspace = Workspace.open(root)
    workspace.settings["face_size"] = 128
    workspace.save()
    add_sources(root, "a", [str(clip) for clip in s1_clips[:2]])
    add_sources(root, "b", [str(next(c for c in speaker_clips if c.stem == "lrwp9a"))])
    return root


@pytest.fixture(scope="session")
def trained_workspace(tmp_path_factory: pytest.TempPathFactory, extracted_workspace: Path) -> Path:
    """``extracted_workspace`` plus a tiny `lite` model trained for a few iterations (32 px).

    Its swaps are blurry, but every stage after training (convert, evaluate) runs for real.
    Treat it as read-only.
    """
    import shutil

    from deepswap.train import TrainOptions, train

    root = tmp_path_factory.mktemp("trained") / "ws"
    shutil.copytree(extracted_workspace, root)
    train(root, TrainOptions(model="lite", iterations=4, batch_size=4, workers=0,
                             architecture={"resolution": 32, "width": 8, "latent": 32}))
    return root
