"""Shared fixtures: tiny models built from config, never downloaded."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from transformers import PreTrainedModel

sys.path.insert(0, str(Path(__file__).parent))  # shared helpers: ``from word_lm import ...``
from word_lm import tiny_causal_lm  # noqa: E402


@pytest.fixture(params=["gpt2", "llama", "neox"])
def tiny_lm(request: pytest.FixtureRequest) -> PreTrainedModel:
    """One tiny model per architecture we promise to support."""
    return tiny_causal_lm(request.param)


@pytest.fixture
def one_thread():
    """Tiny models run fastest single-threaded (and immune to a busy machine)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def chat_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved chat Llama policy (``hf_models.save_chat_llama``): BOS, template, two stop ids."""
    from hf_models import save_chat_llama

    return save_chat_llama(tmp_path_factory.mktemp("chat_llama"))


@pytest.fixture(scope="session")
def chat_tokenizer(chat_dir: Path):
    """The chat Llama's tokenizer, loaded from its folder."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(chat_dir)
