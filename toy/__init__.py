"""The offline toy world: a review language whose gold utility is known.

It has a simulated labeler, a word-level tokenizer, a tiny GPT-2 SFT policy and a preference
dataset, all built by code (no data files, no hub).

Example:
    >>> from rlhf_gym.toy import ToyWorld, GoldUtility, SimulatedLabeler
    >>> world = ToyWorld()
    >>> world.is_well_formed("the phone is great .")
    True
    >>> world.is_well_formed("the the phone is great .")
    False

``build_toy_world()`` builds (or loads from the cache) the tokenizer, the SFT policy and the
preference data and returns a :class:`ToyArtifacts`.
"""

from rlhf_gym.toy.build import CACHE_VERSION, ToyArtifacts, build_toy_world, load_toy_world
from rlhf_gym.toy.cache import ToyCacheError, default_cache_root
from rlhf_gym.toy.defaults import ToyDefaults, toy_defaults
from rlhf_gym.toy.gold import GoldUtility, gold_utility, utility_terms
from rlhf_gym.toy.grammar import ToyWorld, WorldConfig
from rlhf_gym.toy.labeler import SimulatedLabeler
from rlhf_gym.toy.parse import is_well_formed, parse
from rlhf_gym.toy.sft_config import SFTConfig

# These need torch/transformers; they load on first use so a cache hit stays fast.
_LAZY = {
    "sample_completions": "rlhf_gym.toy.sft",
    "train_sft": "rlhf_gym.toy.sft",
    "build_tokenizer": "rlhf_gym.toy.tokenizer",
    "load_tokenizer": "rlhf_gym.toy.tokenizer",
}


def __getattr__(name: str) -> object:
    """Import the torch-dependent names on first access."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rlhf_gym.toy' has no attribute {name!r}")

__all__ = [
    "CACHE_VERSION",
    "GoldUtility",
    "SFTConfig",
    "SimulatedLabeler",
    "ToyArtifacts",
    "ToyCacheError",
    "ToyDefaults",
    "ToyWorld",
    "WorldConfig",
    "build_tokenizer",
    "build_toy_world",
    "default_cache_root",
    "gold_utility",
    "is_well_formed",
    "load_tokenizer",
    "load_toy_world",
    "parse",
    "sample_completions",
    "toy_defaults",
    "train_sft",
    "utility_terms",
]
