"""Command line: ``python -m seglib run PARAMS``, ``python -m seglib compare A B`` and
``python -m seglib report [outputs/<run>] [--check]`` (the README's results section)."""
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

    rep = sub.add_parser("report", help="write README.md's results section from a run (copied to docs/results/)")
    rep.add_argument("run", nargs="?", help="run folder to copy into docs/results/<name>/; without it the "
                                            "section is re-rendered from the copy README's marker names")
    rep.add_argument("--name", help="name of the copy under docs/results/ (default: the run folder's name)")
    rep.add_argument("--bench", default=None, metavar="FILE",
                     help="a `python -m bench --out FILE` file: its lines become the section's benchmark table")
    rep.add_argument("--check", action="store_true",
                     help="write nothing; exit 1 when README.md differs from a re-render of its copy")
    rep.add_argument("--readme", default=None,
                     help="the README to write or check (default: the repository's); "
                          "copies go to docs/results/ beside it")

    args = parser.parse_args(argv)
    if args.command == "report":
        return report(args)
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


def report(args: argparse.Namespace) -> int:
    """``report``: copy the run (when given), render the section into README.md, or only check it."""
    from seglib.config import REPO_ROOT
    from seglib.runs.readme import ReadmeError, check_readme, find_section, write_readme
    from seglib.runs.readme_export import RESULTS_SUBDIR, export_run

    readme = Path(args.readme) if args.readme else REPO_ROOT / "README.md"
    try:
        if args.check:
            if args.run or args.name or args.bench:
                print("error: --check re-renders the copy README.md names; give no run or --name", file=sys.stderr)
                return 2
            diff = check_readme(readme)
            print(diff or f"{readme}: results section up to date", end="" if diff else "\n")
            return 1 if diff else 0
        if args.run:
            export_run(args.run, readme.parent / RESULTS_SUBDIR, name=args.name, bench=args.bench)
            link = f"{RESULTS_SUBDIR}/{args.name or Path(args.run).resolve().name}"
        elif args.bench:
            print("error: --bench goes with a run folder (it is copied beside the run's files)", file=sys.stderr)
            return 2
        else:
            link = find_section(readme.read_text())["folder"]
        changed = write_readme(readme, link)
        print(f"{readme}: results section {'written' if changed else 'unchanged'} from {link}")
    except (ReadmeError, RunError, OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
