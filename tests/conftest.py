import os

import numpy as np
import pytest

import chromium

# Tests never touch the network or the home directory.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


def zscore(values: np.ndarray, expected: float) -> float:
    """|mean - expected| in units of the Monte Carlo standard error of the mean."""
    values = np.asarray(values, dtype=float)
    se = values.std(ddof=1) / np.sqrt(len(values))
    return abs(values.mean() - expected) / se


@pytest.fixture
def z():
    return zscore


@pytest.fixture(scope="session")
def chromium_bin():
    """A Chromium binary for the HTML tests (installed if missing); required under CI=1."""
    try:
        return chromium.ensure()
    except chromium.ChromiumUnavailable as e:
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is required in CI: {e}")
        pytest.skip(f"Chromium unavailable ({e}); set CI=1 to make this a failure")
