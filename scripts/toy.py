"""Build or inspect the offline toy world (tokenizer, SFT policy, preference data).

Examples::

    rlhf-gym toy build --toy-dir /tmp/toy --num-pairs 6000
    rlhf-gym toy info --toy-dir /tmp/toy
    python scripts/toy.py build --toy-dir /tmp/toy

``build`` writes into ``<toy-dir>/toy-v3.1-seed<world-seed>-<hash>/`` (``--toy-dir`` defaults to
``$RLHF_GYM_CACHE`` or ``~/.cache/rlhf_gym``) and is instant when that folder is already complete;
a broken cached folder is reported and rebuilt. ``info`` prints the world's measured statistics
(it builds first if needed).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field

from rlhf_gym.scripts.config import add_dataclass_arguments, dataclass_from_args
from rlhf_gym.toy.build import ToyArtifacts, build_toy_world, load_toy_world


@dataclass
class ToyConfig:
    """Settings of ``rlhf-gym toy build`` and ``toy info``."""

    toy_dir: str = field(
        default="", metadata={"help": "cache root; empty: $RLHF_GYM_CACHE or ~/.cache/rlhf_gym"}
    )
    world_seed: int = field(default=0, metadata={"help": "world and build seed"})
    num_pairs: int = field(default=6000, metadata={"help": "preference pairs to write", "min": 1})
    progress: bool = field(default=True, metadata={"help": "show progress bars"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``build`` and ``info`` sub-commands to ``parser``."""
    sub = parser.add_subparsers(dest="toy_command", metavar="{build,info}")
    build = sub.add_parser("build", help="build the artifacts (or reuse the cache)")
    add_dataclass_arguments(build, ToyConfig)
    build.add_argument("--force", action="store_true", help="rebuild even if cached")
    info = sub.add_parser("info", help="print the toy world's statistics")
    add_dataclass_arguments(info, ToyConfig)
    info.add_argument("--path", default=None,
                      help="an existing artifact folder to describe instead (no build)")


def _print_info(artifacts: ToyArtifacts) -> None:
    s = artifacts.stats
    world = artifacts.world
    lines = [
        f"artifacts:              {artifacts.root}",
        f"vocab size:             {int(s['vocab_size'])} (incl. <pad> <eos> <unk>)",
        f"SFT parameters:         {int(s['num_parameters']):,}",
        f"items train/held-out:   {len(world.train_items)}/{len(world.heldout_items)} "
        f"(held out: {', '.join(world.heldout_items)})",
        f"SFT samples measured:   {int(s['num_samples'])}",
        f"well-formed fraction:   {s['well_formed_frac']:.4f}",
        f"SFT gold mean / std:    {s['sft_gold_mean']:+.3f} / {s['sft_gold_std']:.3f}",
        f"mean length:            {s['mean_words']:.2f} words, {s['mean_sentences']:.2f} sentences",
        f"preference pairs:       {artifacts.num_pairs}",
        f"labeler Bayes accuracy: {s['labeler_bayes_accuracy']:.4f} (default labeler, the pairs)",
        f"build time:             {s['time_build_s']:.1f} s (SFT {s['time_sft_s']:.1f} s, "
        f"sampling {s['time_sampling_s']:.1f} s, labelling {s['time_labelling_s']:.2f} s)",
    ]
    print("\n".join(lines))


def run(args: argparse.Namespace) -> int:
    """Run ``build`` or ``info``; return the exit status."""
    command = getattr(args, "toy_command", None)
    if command is None:
        raise ValueError("choose a sub-command: build or info (see --help).")
    cfg = dataclass_from_args(ToyConfig, args)
    if getattr(args, "path", None):
        artifacts = load_toy_world(args.path)
    else:
        artifacts = build_toy_world(
            cfg.toy_dir or None,
            seed=cfg.world_seed,
            num_pairs=cfg.num_pairs,
            force=getattr(args, "force", False),
            progress=cfg.progress,
        )
    if command == "info":
        _print_info(artifacts)
    else:
        print(artifacts.root)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python scripts/toy.py build --out DIR``."""
    from rlhf_gym.scripts.cli import run_script

    return run_script("rlhf_gym.scripts.toy", argv)


if __name__ == "__main__":
    sys.exit(main())
