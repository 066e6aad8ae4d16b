"""The ``rlhf-gym`` command: one subcommand per script in ``scripts/``.

Each script module exposes ``add_arguments(parser)`` and ``run(args) -> int``; the same
module also runs stand-alone (``python scripts/<name>.py``), so there is one implementation.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# (subcommand, module, one-line help). Modules import lazily so `--help` stays fast.
SUBCOMMANDS: list[tuple[str, str, str]] = [
    ("demo", "rlhf_gym.scripts.demo", "the whole RLHF pipeline on the toy world, with a report"),
    ("toy", "rlhf_gym.scripts.toy", "build or inspect the offline toy world"),
    ("train-rm", "rlhf_gym.scripts.train_reward_model", "train a Bradley-Terry reward model"),
    ("evaluate", "rlhf_gym.scripts.evaluate", "evaluate a policy: reward, gold, KL, diversity"),
    ("train-ppo", "rlhf_gym.scripts.train_ppo", "train an LM policy with PPO on the text env"),
]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser, with one sub-parser per script.

    Only ``command``'s module is imported and given its options: the others would pull in
    torch, transformers and peft, so ``rlhf-gym toy build`` on a cached world stays instant.
    """
    from rlhf_gym import __version__

    parser = argparse.ArgumentParser(
        prog="rlhf-gym",
        description="RLHF on a token-level Gymnasium env: reward models, PPO, and a toy world "
        "with a known gold preference.",
    )
    parser.add_argument("--version", action="version", version=f"rlhf-gym {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name, help_text in SUBCOMMANDS:
        sub_parser = sub.add_parser(name, help=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            sub_parser.description = module.__doc__
            module.add_arguments(sub_parser)
            sub_parser.set_defaults(_run=module.run)
    return parser


def quiet_transformers() -> None:
    """Hide transformers' per-load reports and bars (an RM's fresh score head is expected)."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def run_script(module_name: str, argv: list[str] | None = None) -> int:
    """Run one script module stand-alone (``python scripts/<name>.py``), as its subcommand would."""
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(
        prog=module_name.rsplit(".", 1)[-1], description=module.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    quiet_transformers()
    return int(module.run(args) or 0)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(next((a for a in argv if not a.startswith("-")), None))
    args = parser.parse_args(argv)
    if not hasattr(args, "_run"):
        parser.print_help()
        return 2
    quiet_transformers()
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
