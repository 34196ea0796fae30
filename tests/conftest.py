"""Shared fixtures: a small route table, a deterministic fake encoder and the real model."""

from __future__ import annotations

import hashlib
import os
import re

import numpy as np
import pytest

from router.schema import Route


class FakeEncoder:
    """Deterministic bag-of-words encoder: texts sharing words get similar unit vectors."""

    model_id = "fake-bow-64"

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts):
        self.calls += 1
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1.0
            norm = np.linalg.norm(out[i])
            out[i] = out[i] / norm if norm else out[i]
        return out


@pytest.fixture(scope="session", autouse=True)
def router_cache(tmp_path_factory):
    """One cache for the session, so the ONNX export happens once and nothing lands in ~/.cache."""
    path = tmp_path_factory.mktemp("llm-router-cache")
    os.environ["LLM_ROUTER_CACHE"] = str(path)
    # Apps launched by tests keep their preference store out of the checkout's data/ too.
    os.environ["LLM_ROUTER_STORE"] = str(tmp_path_factory.mktemp("store") / "preferences.sqlite3")
    return path


@pytest.fixture
def routes():
    return [
        Route("roleplay", "zoomer", keywords=("i want you to act as",), utterances=("pretend you are a pirate captain",)),
        Route(
            "code",
            "professor",
            keywords=(r"def \w+\(", "```", "python function"),
            utterances=("write a python function to sort a list", "fix the bug in my javascript code"),
        ),
        Route("math", "professor", keywords=(r"solve for \w",), utterances=("what is 15 percent of 240", "solve the equation for x")),
        Route("knowledge", "zoomer", utterances=("who was the first president of the united states", "what is the capital of peru")),
    ]


@pytest.fixture
def fake_encoder():
    return FakeEncoder()


@pytest.fixture(scope="session")
def onnx_encoder(router_cache):
    from router.encoders import OnnxEncoder

    return OnnxEncoder(cache_dir=str(router_cache))
