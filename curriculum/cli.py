"""The `curriculum` command.

Heavy libraries (torch, transformers, TRL, Ray) are imported inside the commands, so
`--help` and config errors answer instantly. Usage and config errors exit 2 with one line.
"""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from curriculum.config import Config, load_config
from curriculum.errors import CurriculumError

EXIT_USAGE = 2
EXIT_ENVIRONMENT = 1
# Disk full, quota, permissions, read-only filesystem: the machine's fault, told in one line.
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EFBIG}
ALLOW_CODE_CHANGE_HELP = (
    "continue even though the code differs from the code the run ran with "
    "(code_version.json); the run goes on with this code and records the change"
)
# `curriculum eval` on a model that is not a run reads its datasets and answer format from here.
DEFAULT_EVAL_CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "eval.yaml")


def _load(args: argparse.Namespace) -> Config:
    return load_config(args.config, args.overrides)


def cmd_pretrain(args: argparse.Namespace) -> int:
    config = _load(args)  # validate before the slow imports
    from curriculum.training.pretrain import pretrain

    pretrain(config, progress=True)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args)
    from curriculum.run.runner import resume_experiment, run_experiment
    from curriculum.rundir import is_run_dir, run_dir_for

    if args.resume and (args.run_dir or config.experiment.run_name) and is_run_dir(run_dir_for(config, args.run_dir)):
        resume_experiment(
            run_dir_for(config, args.run_dir),
            expected=config,
            allow_code_change=args.allow_code_change,
            pin_imports=True,
        )
    else:
        run_experiment(config, run_dir=args.run_dir, pin_imports=True)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from curriculum.run.runner import resume_experiment

    resume_experiment(args.run_dir, allow_code_change=args.allow_code_change, pin_imports=True)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    import json

    from curriculum.report.summary import summarize

    summary = summarize(args.run_dir, args.round)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    from rich.console import Console

    from curriculum.report.views import inspect_views

    console = Console()
    for view in inspect_views(summary):
        console.print(view)
    return 0


def cmd_lineage(args: argparse.Namespace) -> int:
    import json

    from curriculum.report.lineage import load_lineage

    lineage, snapshot = load_lineage(args.run_dir, args.problem_id)
    if args.json:
        print(json.dumps({"snapshot": snapshot, **lineage.to_dict()}, indent=2))
        return 0
    from rich.console import Console

    from curriculum.report.views import lineage_tree

    console = Console()
    console.print(f"lineage of {lineage.problem.id} ({snapshot}; solve r<round>:<correct>/<attempts>)")
    console.print(lineage_tree(lineage))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from curriculum.report.benchmark import resolve_target
    from curriculum.rundir import RunLayout, is_run_dir

    target_path = Path(args.target)
    if args.config is not None:
        config = load_config(args.config, args.overrides)
    elif is_run_dir(target_path):  # the run's own datasets and settings
        config = load_config(RunLayout(target_path).config, args.overrides)
    else:
        config = load_config(DEFAULT_EVAL_CONFIG, args.overrides)
    target = resolve_target(args.target, args.policy_version, args.base)
    fields = {
        "question_field": args.question_field,
        "answer_field": args.answer_field,
        "extraction": args.extraction,
        "subject_field": args.subject_field,
        "level_field": args.level_field,
        "split": args.split,
    }
    import json

    from curriculum.report.benchmark import run_eval

    summary, path = run_eval(
        config,
        target,
        args.dataset,
        k=args.k,
        samples=args.samples,
        temperature=args.temperature,
        limit=args.limit,
        max_new_tokens=args.max_new_tokens,
        fields=fields,
        seed=args.seed,
        out=args.out,
        progress=not args.json,
        skip_oversized=args.skip_oversized,
        also_extractions=args.also_extraction or (),
        skip_invalid=args.skip_invalid,
    )
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "items"}, indent=2, default=str))
        return 0
    from rich.console import Console

    from curriculum.report.views import eval_table

    console = Console()
    console.print(eval_table(summary))
    if summary.get("skipped_oversized", {}).get("count"):
        skipped = summary["skipped_oversized"]
        console.print(
            f"skipped {skipped['count']} problems whose prompt does not fit the model (first: {skipped['lines'][0]})"
        )
    if summary.get("skipped_invalid", {}).get("count"):
        invalid = summary["skipped_invalid"]
        console.print(
            f"skipped {invalid['count']} records with no answer by the dataset's extraction rule "
            f"(first: {invalid['lines'][0]})"
        )
    logged = f"; logged to MLflow run {summary['mlflow_run_id']}" if summary.get("mlflow_run_id") else ""
    console.print(f"wrote {path} ({summary['seconds']:.1f} s){logged}")
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    import shlex

    paths = [item for item in args.recipes if "=" not in item]
    overrides = [item for item in args.recipes if "=" in item] + list(args.overrides)
    if not paths:
        raise CurriculumError("ablate: name at least one recipe, e.g. configs/sws_tiny.yaml")
    for path in paths:  # validate every recipe before the slow imports
        load_config(path, overrides)
    from curriculum.run.ablate import run_ablation

    command = " ".join(
        [
            "curriculum ablate",
            *map(shlex.quote, [*paths, *overrides]),
            f"--seeds {args.seeds}",
            f"--out {shlex.quote(args.out)}",
        ]
    )
    run_ablation(paths, overrides, args.seeds, args.out, command=command)
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
    run.add_argument(
        "--run-dir",
        help="the run directory (default: runs/<experiment>/<run_name or timestamp>); an existing one is refused",
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="if the run directory exists, continue it (its config must equal this one)",
    )
    run.add_argument("--allow-code-change", action="store_true", help=ALLOW_CODE_CHANGE_HELP)
    run.set_defaults(handler=cmd_run)

    resume = commands.add_parser("resume", help="continue a killed or stopped run from its last completed stage")
    resume.add_argument("run_dir", help="runs/<experiment>/<run>")
    resume.add_argument("--allow-code-change", action="store_true", help=ALLOW_CODE_CHANGE_HELP)
    resume.set_defaults(handler=cmd_resume)

    pre = commands.add_parser("pretrain", help="build (or reuse) the toy base model and print its accuracy table")
    _add_config_args(pre)
    pre.set_defaults(handler=cmd_pretrain)

    inspect = commands.add_parser("inspect", help="show a run's rounds and store counts (works while it runs)")
    inspect.add_argument("run_dir", help="runs/<experiment>/<run>")
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    inspect.add_argument("--round", type=int, help="the run as of the end of this round (default: the newest)")
    inspect.set_defaults(handler=cmd_inspect)

    lineage = commands.add_parser(
        "lineage",
        help="a problem's ancestors back to a seed and its descendants, "
        "with solve rates per round (works while it runs)",
    )
    lineage.add_argument("run_dir", help="runs/<experiment>/<run>")
    lineage.add_argument("problem_id", help="a problem id, or a unique prefix of one")
    lineage.add_argument("--json", action="store_true", help="print one JSON object")
    lineage.set_defaults(handler=cmd_lineage)

    ev = commands.add_parser("eval", help="pass@1 and pass@k of a model, a run's policy or an adapter on a benchmark")
    ev.add_argument(
        "target",
        metavar="MODEL_OR_RUN",
        help="a run directory (its latest policy), an adapter folder, or a base model folder or hub id",
    )
    ev.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. datasets.mine.path=data.jsonl")
    ev.add_argument(
        "--dataset",
        required=True,
        metavar="NAME_OR_PATH",
        help="a dataset named in the config (configs/benchmarks.yaml) or a .jsonl/.parquet file",
    )
    ev.add_argument("--k", type=int, default=1, help="report pass@k too (default 1)")
    ev.add_argument("--samples", type=int, help="completions per problem (default k)")
    ev.add_argument(
        "--temperature", type=float, help="default: greedy for one sample, evaluation.temperature for several"
    )
    ev.add_argument("--limit", type=int, help="only the first N problems")
    ev.add_argument("--max-new-tokens", type=int, help="default evaluation.max_new_tokens")
    ev.add_argument("--policy-version", type=int, help="with a run: this version instead of the latest (0: base)")
    ev.add_argument("--base", help="the base model under an adapter (default: what the adapter or run names)")
    ev.add_argument(
        "--config",
        help=f"recipe with the datasets and evaluation settings (default: the run's "
        f"config.yaml, else {DEFAULT_EVAL_CONFIG})",
    )
    ev.add_argument("--out", help="the JSON report (default: <run>/eval/vNNNN/<dataset>.json or runs/eval/...)")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument(
        "--skip-oversized",
        action="store_true",
        help="leave out (and count) problems whose prompt does not fit the model, instead of refusing the dataset",
    )
    ev.add_argument(
        "--skip-invalid",
        action="store_true",
        help="leave out (and count) records whose answer field holds no answer by the dataset's "
        "extraction rule, instead of refusing the dataset",
    )
    ev.add_argument("--json", action="store_true", help="print the report (without per-problem items) as JSON")
    fields = ev.add_argument_group("field mapping of a dataset file (override the config's)")
    for name in ("question", "answer", "subject", "level"):
        fields.add_argument(f"--{name}-field")
    extraction = ["auto", "boxed", "gsm8k", "answer_colon", "last_number", "none"]
    fields.add_argument("--extraction", choices=extraction, help="how to read the reference out of the answer field")
    ev.add_argument(
        "--also-extraction",
        action="append",
        choices=extraction,
        metavar="RULE",
        help="also report pass@k with models' answers read by RULE (labelled; the headline number "
        "reads them as the config's world.extraction does, as the loop does); repeatable",
    )
    fields.add_argument("--split", help="split of a Hugging Face dataset")
    ev.set_defaults(handler=cmd_eval)

    ablate = commands.add_parser(
        "ablate",
        help="run recipes side by side at equal compute over several seeds and write results.md and accuracy.png",
    )
    ablate.add_argument(
        "recipes",
        nargs="+",
        metavar="CONFIG",
        help="YAML recipes, e.g. configs/sws_tiny.yaml; key=value words override every recipe",
    )
    ablate.add_argument("--seeds", type=int, default=3, help="runs per recipe: experiment.seed, +1, ... (default 3)")
    ablate.add_argument("--out", required=True, help="output folder (runs/, results.md, accuracy.png)")
    ablate.set_defaults(handler=cmd_ablate, overrides=[])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from curriculum.environment import pin_cpu_numerics

    pin_cpu_numerics()  # before anything loads torch: the same bits on every x86-64 CPU (environment.py)
    parser = build_parser()
    # Dotted overrides may follow options (`eval MODEL --dataset x data_root=...`): argparse
    # leaves such trailing key=value words over, and they join the command's overrides.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if hasattr(args, "overrides") and all("=" in word and not word.startswith("-") for word in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except CurriculumError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        if exc.errno not in _ENVIRONMENT_ERRNOS:
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        print(
            f"error: {exc.strerror}{where}: free space or fix permissions, then `curriculum resume RUN_DIR` "
            "continues after the last completed stage",
            file=sys.stderr,
        )
        return EXIT_ENVIRONMENT


if __name__ == "__main__":
    sys.exit(main())
