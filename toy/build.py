"""Build (or load from cache) the toy world's artifacts: tokenizer, SFT policy, preference data.

``build_toy_world`` runs, in a temp folder that is renamed into the cache only when complete:

1. the word-level tokenizer (``tokenizer/``);
2. the SFT policy, trained on world samples (``sft/``, a plain HF model dir with the tokenizer);
3. ``preferences.jsonl``: for ``num_pairs`` train prompts, two pure samples from the SFT policy,
   labelled by the default :class:`~rlhf_gym.toy.labeler.SimulatedLabeler`; rows are
   ``{"prompt", "chosen", "rejected"}`` (pairs of identical completions are skipped);
4. ``stats.json``: gold mean/std, lengths and well-formed fraction of those SFT samples, and the
   labeler's Bayes accuracy on the pairs.

A second call with the same settings returns the cached folder after checking its manifest.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from rlhf_gym.evaluation.metrics import word_lengths
from rlhf_gym.toy import cache
from rlhf_gym.toy.gold import GoldUtility
from rlhf_gym.toy.grammar import ToyWorld, WorldConfig
from rlhf_gym.toy.labeler import SimulatedLabeler
from rlhf_gym.toy.sft_config import SFTConfig

if TYPE_CHECKING:  # torch and transformers load only when a build or a model load needs them
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# v3: reviews stay off other items and SFT predicts a star rating; v3.1: a grammar slip costs -2
CACHE_VERSION = "v3.1"


@dataclass(frozen=True)
class ToyArtifacts:
    """Where a built toy world lives, and what it was built from.

    Attributes:
        root: the artifact folder (``<cache root>/toy-v3.1-seed<seed>-<hash>``).
        tokenizer_dir: ``AutoTokenizer.from_pretrained`` folder.
        sft_dir: ``AutoModelForCausalLM.from_pretrained`` folder (also holds the tokenizer).
        preferences_path: JSONL with ``prompt``, ``chosen``, ``rejected`` per line.
        world_config: the world's configuration (its seed is the build seed).
        sft_config: the SFT policy's architecture and training budget.
        num_pairs: number of preference pairs.
        stats: measured properties of the SFT policy and the labels (see ``stats.json``).
    """

    root: Path
    tokenizer_dir: Path
    sft_dir: Path
    preferences_path: Path
    world_config: WorldConfig
    sft_config: SFTConfig
    num_pairs: int
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def world(self) -> ToyWorld:
        """The toy world (grammar, prompts and split) these artifacts were built from."""
        return ToyWorld(self.world_config)

    def load_tokenizer(self) -> PreTrainedTokenizerBase:
        """The tokenizer, via plain ``AutoTokenizer.from_pretrained``."""
        from rlhf_gym.toy.tokenizer import load_tokenizer

        return load_tokenizer(self.tokenizer_dir)

    def load_sft_model(self) -> PreTrainedModel:
        """The SFT policy in eval mode, via plain ``AutoModelForCausalLM.from_pretrained``."""
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(str(self.sft_dir)).eval()

    def read_preferences(self) -> list[dict[str, str]]:
        """All preference rows."""
        with self.preferences_path.open() as handle:
            return [json.loads(line) for line in handle]


def _entry_name(seed: int, num_pairs: int, world_config: WorldConfig, sft_config: SFTConfig) -> str:
    payload = {"version": CACHE_VERSION, "num_pairs": num_pairs,
               "world": world_config.to_dict(), "sft": sft_config.to_dict()}
    return f"toy-{CACHE_VERSION}-seed{seed}-{cache.config_hash(payload)}"


def load_toy_world(path: str | Path) -> ToyArtifacts:
    """Load a built artifact folder (the ``root`` of :class:`ToyArtifacts`).

    Raises:
        FileNotFoundError: when ``path`` is not a complete, intact build (with the reason).
    """
    root = Path(path)
    problem = cache.check(root)
    if problem is not None:
        raise FileNotFoundError(f"{root} is not a complete toy-world build: {problem}")
    manifest = cache.read_manifest(root)
    world = dict(manifest["world"])  # type: ignore[arg-type]
    world["sentence_probs"] = tuple(world["sentence_probs"])
    return ToyArtifacts(
        root=root,
        tokenizer_dir=root / "tokenizer",
        sft_dir=root / "sft",
        preferences_path=root / "preferences.jsonl",
        world_config=WorldConfig(**world),
        sft_config=SFTConfig(**manifest["sft"]),  # type: ignore[arg-type]
        num_pairs=int(manifest["num_pairs"]),  # type: ignore[arg-type]
        stats=json.loads((root / "stats.json").read_text()),
    )


def _sample_pairs(
    world: ToyWorld,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    num_pairs: int,
    seed: int,
    max_new_tokens: int,
    progress: bool,
) -> tuple[list[str], list[str], list[str], list[str]]:
    """Two SFT samples for each of ``num_pairs`` train prompts.

    Identical pairs and pairs with an empty completion (the policy stopped at once) are not
    written: preference data must have two different, non-empty completions.

    Returns:
        ``(prompts, first, second, all_samples)``; ``all_samples`` includes skipped pairs.
    """
    from rlhf_gym.toy.sft import sample_completions

    rng = np.random.default_rng([seed, 2])
    prompts: list[str] = []
    first: list[str] = []
    second: list[str] = []
    samples: list[str] = []
    round_ = 0
    while len(prompts) < num_pairs:
        want = num_pairs - len(prompts)
        batch = [str(p) for p in rng.choice(world.train_prompts, size=want + want // 20 + 8)]
        doubled = [p for p in batch for _ in range(2)]
        out = sample_completions(model, tokenizer, doubled, seed=seed * 1000 + round_,
                                 max_new_tokens=max_new_tokens, progress=progress)
        samples.extend(out)
        for i, prompt in enumerate(batch):
            a, b = out[2 * i], out[2 * i + 1]
            if a != b and a.strip() and b.strip() and len(prompts) < num_pairs:
                prompts.append(prompt)
                first.append(a)
                second.append(b)
        round_ += 1
    return prompts, first, second, samples


def _write_preferences(
    path: Path, world: ToyWorld, prompts: list[str], first: list[str], second: list[str],
    seed: int, progress: bool,
) -> float:
    """Label the pairs with the default labeler, write JSONL, return the Bayes accuracy."""
    from tqdm.auto import tqdm

    labeler = SimulatedLabeler(world, seed=seed)
    wins = labeler.label(prompts, first, second)
    with path.open("w") as handle:
        rows = zip(prompts, first, second, wins, strict=True)
        for prompt, a, b, a_wins in tqdm(rows, total=len(prompts), desc="toy: labelling",
                                         disable=not progress):
            chosen, rejected = (a, b) if a_wins else (b, a)
            row = {"prompt": prompt, "chosen": chosen, "rejected": rejected}
            handle.write(json.dumps(row) + "\n")
    return labeler.bayes_accuracy(list(zip(prompts, first, second, strict=True)))


def _build(folder: Path, seed: int, num_pairs: int, world_config: WorldConfig,
           sft_config: SFTConfig, progress: bool) -> dict[str, float]:
    """Write every artifact into ``folder``; return the stats."""
    from rlhf_gym.toy.sft import train_sft
    from rlhf_gym.toy.tokenizer import save_tokenizer

    timings: dict[str, float] = {}
    start = time.perf_counter()
    world = ToyWorld(world_config)
    tokenizer = save_tokenizer(folder / "tokenizer")
    model, losses = train_sft(world, tokenizer, sft_config, seed=seed, progress=progress)
    model.save_pretrained(str(folder / "sft"))
    tokenizer.save_pretrained(str(folder / "sft"))
    timings["time_sft_s"] = time.perf_counter() - start

    start = time.perf_counter()
    prompts, first, second, samples = _sample_pairs(
        world, model, tokenizer, num_pairs, seed, sft_config.max_new_tokens, progress
    )
    timings["time_sampling_s"] = time.perf_counter() - start
    start = time.perf_counter()
    bayes = _write_preferences(folder / "preferences.jsonl", world, prompts, first, second,
                               seed, progress)
    timings["time_labelling_s"] = time.perf_counter() - start

    sample_prompts = [p for p in prompts for _ in range(2)]
    sample_completions_ = [c for pair in zip(first, second, strict=True) for c in pair]
    gold = GoldUtility().score(sample_prompts, sample_completions_)
    stats = {
        "num_samples": float(len(samples)),
        "well_formed_frac": float(np.mean([world.is_well_formed(c) for c in samples])),
        "sft_gold_mean": float(gold.mean()),
        "sft_gold_std": float(gold.std()),
        "mean_words": float(np.mean(word_lengths(sample_completions_))),
        "mean_sentences": float(np.mean([world.num_sentences(c) for c in sample_completions_])),
        "labeler_bayes_accuracy": bayes,
        "vocab_size": float(len(tokenizer)),
        "num_parameters": float(sum(p.numel() for p in model.parameters())),
        "sft_final_loss": float(np.mean(losses[-20:])),
        **timings,
    }
    (folder / "stats.json").write_text(json.dumps(stats, indent=2, sort_keys=True))
    return stats


def build_toy_world(
    out_dir: str | Path | None = None,
    *,
    seed: int = 0,
    num_pairs: int = 6000,
    force: bool = False,
    progress: bool = True,
    sft_config: SFTConfig | None = None,
) -> ToyArtifacts:
    """Build the toy world's artifacts, or return them from the cache.

    Args:
        out_dir: cache root; the artifacts go to ``out_dir/toy-v3.1-seed<seed>-<hash>``.
            Defaults to ``$RLHF_GYM_CACHE`` or ``~/.cache/rlhf_gym``.
        seed: seed of the world, the SFT training, the sampling and the labels.
        num_pairs: number of preference pairs to write.
        force: rebuild even when an intact cached copy exists.
        progress: show tqdm progress bars and cache messages (on stderr).
        sft_config: the SFT policy's architecture and budget; ``SFTConfig()`` by default.

    Raises:
        ToyCacheError: when ``out_dir`` cannot be created or written to.
    """
    if num_pairs < 1:
        raise ValueError(f"num_pairs must be >= 1, got {num_pairs}")
    root = Path(out_dir).expanduser() if out_dir is not None else cache.default_cache_root()
    cache.ensure_writable(root)
    world_config = WorldConfig(seed=seed)
    sft_config = sft_config or SFTConfig()
    final = root / _entry_name(seed, num_pairs, world_config, sft_config)
    problem = cache.check(final)
    if problem is None and not force:
        return load_toy_world(final)
    if final.exists() and problem is not None:
        print(f"toy: cached build at {final} is broken ({problem}); rebuilding.", file=sys.stderr)
        shutil.rmtree(final)
    start = time.perf_counter()
    with cache.staging(final, replace=force) as tmp:
        stats = _build(tmp, seed, num_pairs, world_config, sft_config, progress)
        stats["time_build_s"] = time.perf_counter() - start
        (tmp / "stats.json").write_text(json.dumps(stats, indent=2, sort_keys=True))
        cache.seal(tmp, {"version": CACHE_VERSION, "seed": seed, "num_pairs": num_pairs,
                         "world": world_config.to_dict(), "sft": sft_config.to_dict()})
    if progress:
        print(f"toy: built in {stats['time_build_s']:.1f} s -> {final}", file=sys.stderr)
    return load_toy_world(final)
