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


def cmd_inspect(args: argparse.Namespace) -> int:
    import json

    from curriculum.inspect import summarize

    summary = summarize(args.run_dir)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{summary['run_dir']} ({summary['snapshot']})", title_justify="left")
    levels = sorted({lv for r in summary["rounds"] for lv in r["eval"]["by_level"]}, key=int)
    for name in ["round", "policy", *[f"L{lv}" for lv in levels], "all", "added"]:
        table.add_column(name, justify="left" if name == "added" else "right")
    for r in summary["rounds"]:
        by_level = r["eval"]["by_level"]
        table.add_row(str(r["round"]), f"v{r['policy_version']}",
                      *[f"{100 * by_level[lv]:.0f}" if lv in by_level else "" for lv in levels],
                      f"{100 * (r['eval']['overall'] or 0):.0f}",
                      ", ".join(f"{k} {v}" for k, v in sorted(r["problems_by_source"].items())))
    console = Console()
    console.print(table)
    console.print("store: " + ", ".join(f"{k} {v}" for k, v in summary["store"].items()))
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

    inspect = commands.add_parser("inspect", help="show a run's rounds and store counts (works while it runs)")
    inspect.add_argument("run_dir", help="runs/<experiment>/<run>")
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    inspect.set_defaults(handler=cmd_inspect)
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
