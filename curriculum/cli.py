"""The `curriculum` command.

Heavy libraries (torch, transformers, TRL, Ray) are imported inside the commands, so
`--help` and config errors answer instantly. Usage and config errors exit 2 with one line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from curriculum.config import Config, load_config
from curriculum.errors import CurriculumError

EXIT_USAGE = 2


def _load(args: argparse.Namespace) -> Config:
    return load_config(args.config, args.overrides)


def cmd_pretrain(args: argparse.Namespace) -> int:
    config = _load(args)  # validate before the slow imports
    from curriculum.training.sft import pretrain

    pretrain(config, progress=True)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args)
    from curriculum.runner import run_experiment

    run_experiment(config)
    return 0


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="a YAML recipe, e.g. configs/tiny.yaml")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. solver.attempts=4")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="curriculum",
        description="Self-improving curriculum experiments on LLM reasoning.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="run an experiment from a recipe (builds the base model if needed)")
    _add_config_args(run)
    run.set_defaults(handler=cmd_run)

    pre = commands.add_parser("pretrain", help="build (or reuse) the toy base model and print its accuracy table")
    _add_config_args(pre)
    pre.set_defaults(handler=cmd_pretrain)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except CurriculumError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
