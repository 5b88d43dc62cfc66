"""Shared fixtures. ``sirst_root`` is the real SIRST data in ../shared/data (developer machines
and CI only); tests that need it skip with a reason elsewhere. Set EDGEIRST_SIRST to point at
another copy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _sirst() -> Path:
    env = os.environ.get("EDGEIRST_SIRST")
    return Path(env) if env else REPO.parent / "shared" / "data" / "sirst"


@pytest.fixture(scope="session")
def sirst_root() -> Path:
    root = _sirst()
    if not (root / "images").is_dir():
        pytest.skip(f"real SIRST data not found at {root} (only on developer machines and CI)")
    return root


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic SIRST-layout dataset (16 grey 8-bit 64x80 images, 1-2 targets each;
    ``images/``, ``masks/<id>_pixels0.png``, ``idx_synth/{train,val}.txt`` with 12/4 ids).
    Load it with ``edgeirst.data.SirstDataset(synth_root, "train")``."""
    from edgeirst.data.synth import SynthConfig, write_dataset

    cfg = SynthConfig(height=64, width=80, targets=(1, 2), sizes=(1.0, 2.5), seed=0)
    return write_dataset(tmp_path_factory.mktemp("synth"), cfg, images=16, splits={"train": 0.75, "val": 0.25})
