"""Shared fixtures: the real recordings in ../shared/iq (never copied into the repo)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_IQ = Path(__file__).resolve().parents[1].parent / "shared" / "iq"
MODES1 = SHARED_IQ / "antirez_dump1090_modes1_2000k.cu8"


def shared_file(name: str) -> Path:
    """A real recording, or skip: they live beside the repository, not in it."""
    path = SHARED_IQ / name
    if not path.exists():
        pytest.skip(f"real recording {path} not present (tests read ../shared/iq beside the repo)")
    return path


@pytest.fixture
def modes1() -> Path:
    return shared_file(MODES1.name)


@pytest.fixture
def rsadsb_files() -> list[Path]:
    if not SHARED_IQ.is_dir():
        pytest.skip(f"{SHARED_IQ} not present (real recordings live beside the repo)")
    files = sorted(SHARED_IQ.glob("rsadsb_*_2400k.sc16"))
    if not files:
        pytest.skip(f"no rsadsb recordings in {SHARED_IQ}")
    return files
