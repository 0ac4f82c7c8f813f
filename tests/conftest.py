"""Shared pytest fixtures. Each section belongs to one part of the project; add yours under a header."""

from __future__ import annotations

import os

import pytest

# ---------------------------------------------------------------------------------------------
# Models: a tiny randomly initialised Llama with a tokenizer trained on the spot (no downloads).
# ---------------------------------------------------------------------------------------------
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory):
    """A model folder that loads with `from_pretrained(path)`, built once per test session."""
    from solve_in_lean.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))
