"""Command line: ``python -m seglib run PARAMS`` and ``python -m seglib compare A B``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seglib.config import ParamError
from seglib.runs import RunError, RunInterrupted, compare_runs, dry_run, run_notebooks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seglib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute the numbered notebooks into outputs/<run_name>/")
    run.add_argument("params", help="parameter file, e.g. params/smoke.yaml")
    run.add_argument("--only", help="comma list of notebooks to run, e.g. 01,02")
    run.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                     help="override one parameter (value read as YAML); repeatable")
    run.add_argument("--name", help="run folder name (default: run_name from the file, else <stem>-<time>)")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue an existing run folder")
    mode.add_argument("--force", action="store_true", help="move an existing run folder aside and start again")
    mode.add_argument("--rerun", metavar="NOTEBOOKS",
                      help="run these finished notebooks again (e.g. 03) in an existing folder; later ones become stale")
    run.add_argument("--outputs", default=None, help="folder holding run folders (default: outputs/)")
    run.add_argument("--quiet", action="store_true", help="no per-cell progress bar inside each notebook")
    run.add_argument("--dry-run", action="store_true",
                     help="validate parameters and check every path and model name; run nothing")

    cmp = sub.add_parser("compare", help="parameters that differ and metric deltas between two runs")
    cmp.add_argument("a")
    cmp.add_argument("b")
    cmp.add_argument("--all", action="store_true", help="list unchanged metrics too")

    args = parser.parse_args(argv)
    try:
        if args.command == "run" and args.dry_run:
            problems = dry_run(args.params, overrides=args.param)
            for problem in problems:
                print(f"problem: {problem}")
            print(f"{args.params}: {'ready to run' if not problems else f'{len(problems)} problem(s)'}")
            return 1 if problems else 0
        if args.command == "run":
            kwargs = {"outputs_dir": Path(args.outputs)} if args.outputs else {}
            run_dir = run_notebooks(args.params, overrides=args.param, only=args.only, run_name=args.name,
                                    resume=args.resume, force=args.force, rerun=args.rerun,
                                    progress=not args.quiet, **kwargs)
            print(f"run folder: {run_dir}")
        elif args.command == "compare":
            print(compare_runs(Path(args.a), Path(args.b), all_rows=args.all), end="")
    except (ParamError, RunError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except RunInterrupted as err:
        print(f"\n{err}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
