"""The ``rlhf-gym`` command: one subcommand per script in ``scripts/``.

Each script module exposes ``add_arguments(parser)`` and ``run(args) -> int``, and ``CONFIG``
(its config dataclass) when it reads ``--config``; the same module also runs stand-alone
(``python scripts/<name>.py``), so there is one implementation. A user error (a bad setting, a
path that is not there, data the library refuses) prints one line naming it and exits with 2;
``--debug`` (or ``RLHF_GYM_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from types import ModuleType

# (subcommand, module, one-line help). Modules import lazily so `--help` stays fast.
SUBCOMMANDS: list[tuple[str, str, str]] = [
    ("demo", "rlhf_gym.scripts.demo", "the whole RLHF pipeline on the toy world, with a report"),
    ("toy", "rlhf_gym.scripts.toy", "build or inspect the offline toy world"),
    ("train-rm", "rlhf_gym.scripts.train_reward_model", "train a Bradley-Terry reward model"),
    ("evaluate", "rlhf_gym.scripts.evaluate", "evaluate a policy: reward, gold, KL, diversity"),
    ("train-ppo", "rlhf_gym.scripts.train_ppo", "PPO (or --algo grpo|rloo) on the text env"),
    ("train-dpo", "rlhf_gym.scripts.train_dpo", "train an LM policy with DPO on preference pairs"),
    ("report", "rlhf_gym.scripts.report", "the report of any run folder, or of several seeds"),
    ("compare-methods", "rlhf_gym.scripts.compare_methods", "PPO, GRPO, RLOO, DPO: gold vs KL"),
]
#: Exceptions that mean the user asked for something that cannot be done: exit status 2.
USER_ERRORS = (ValueError, TypeError, OSError, LookupError, ImportError)
FORMATTER = argparse.ArgumentDefaultsHelpFormatter


def add_common_options(parser: argparse.ArgumentParser, module: ModuleType) -> None:
    """``--debug`` everywhere; ``--config FILE`` where the script has a config dataclass."""
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    if hasattr(module, "CONFIG"):
        parser.add_argument(
            "--config", default=None, metavar="FILE",
            help="JSON or YAML file of settings (flags given too take precedence)",
        )


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
        sub_parser = sub.add_parser(name, help=help_text, formatter_class=FORMATTER)
        if name == command:
            module = importlib.import_module(module_name)
            sub_parser.description = module.__doc__
            module.add_arguments(sub_parser)
            add_common_options(sub_parser, module)
            sub_parser.set_defaults(_run=module.run, _module=module, _parser=sub_parser)
    return parser


def quiet_transformers() -> None:
    """Hide transformers' per-load reports and weight-loading bars (an RM's fresh head is fine).

    Reward-model training turns the Trainer's own progress bar back on for its run.
    """
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def apply_config_file(args: argparse.Namespace, argv: list[str]) -> argparse.Namespace:
    """Re-parse with the ``--config`` file's settings as defaults (flags given still win)."""
    if not getattr(args, "config", None):
        return args
    from rlhf_gym.scripts.config import load_config_file

    settings = load_config_file(args.config, args._module.CONFIG)
    args._parser.set_defaults(**settings)
    return args._parser.parse_args(argv)


def execute(args: argparse.Namespace, argv: list[str], prog: str) -> int:
    """Run the parsed command; a user error becomes one line on stderr and exit status 2."""
    debug = args.debug or bool(os.environ.get("RLHF_GYM_DEBUG"))
    try:
        args = apply_config_file(args, argv)
        quiet_transformers()
        status = int(args._run(args) or 0)
        if "rlhf_gym.distributed" in sys.modules:  # the job ran under a launcher: end together
            sys.modules["rlhf_gym.distributed"].shutdown()
        return status
    except Exception as err:  # noqa: BLE001 - every error is reported, tracebacks on request
        if debug:
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"{prog}: error: {message}", file=sys.stderr)
        print(f"{prog}: (run with --debug for the traceback)", file=sys.stderr)
        return 2 if isinstance(err, USER_ERRORS) else 1


def run_script(module_name: str, argv: list[str] | None = None) -> int:
    """Run one script module stand-alone (``python scripts/<name>.py``), as its subcommand would."""
    argv = sys.argv[1:] if argv is None else list(argv)
    module = importlib.import_module(module_name)
    prog = module_name.rsplit(".", 1)[-1]
    parser = argparse.ArgumentParser(prog=prog, description=module.__doc__,
                                     formatter_class=FORMATTER)
    module.add_arguments(parser)
    add_common_options(parser, module)
    parser.set_defaults(_run=module.run, _module=module, _parser=parser)
    return execute(parser.parse_args(argv), argv, prog)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if not hasattr(args, "_run"):
        parser.print_help()
        return 2
    rest = argv[argv.index(args.command) + 1 :]
    return execute(args, rest, f"rlhf-gym {args.command}")


if __name__ == "__main__":
    sys.exit(main())
