"""Training from the command line, one process or many: ``python -m seglib.train {sft,grpo}``.

The same stages notebooks 03 (SFT) and 04 (GRPO) run, on a run folder, with
the parameters of a ``params/*.yaml`` file (validated by ``seglib.config``)::

    python -m seglib.train sft  --params params/smoke.yaml --run-dir outputs/smoke --paradigm boxpoints
    python -m seglib.train grpo --params params/smoke.yaml --run-dir outputs/smoke --paradigm boxpoints

and, unchanged, under ``accelerate launch`` (trl/transformers' Trainer reads the
distributed environment the launcher sets)::

    accelerate launch --config_file configs/accelerate/cpu_2proc.yaml -m seglib.train sft --params ...
    accelerate launch --config_file configs/accelerate/multi_gpu_zero2.yaml -m seglib.train grpo --params params/full.yaml ...

What it does, per stage:

- the run folder's ``data/`` (notebook 01) is made first if it is missing (the
  main process writes it, the others wait); a paradigm that ``needs_trajectories``
  (SFT on F_sim steps) also needs notebook 02's ``trajectories/train.jsonl`` and makes it
  the same way (``seglib.train.run_folder``);
- ``sft``: notebook 03's ``seglib.train.sft.sft_paradigm`` from ``policy`` (HF
  name or path) or the run's tiny base ``checkpoints/policy-base`` (built as
  notebook 03 builds it when missing) into ``checkpoints/sft-<paradigm>``;
- ``grpo``: ``seglib.train.rl_stage.run_grpo_stage`` from ``checkpoints/sft-<paradigm>``
  into ``checkpoints/grpo-<paradigm>``, with ``GRPOParams`` from the same builder
  notebook 04 calls (``seglib.train.settings.grpo_params``, with ``grpo_paradigm_settings``);
  ``grpo --variant NAME`` trains the item of ``grpo_variants`` so named into
  ``checkpoints/grpo-<paradigm>-<NAME>`` (for every paradigm with a variant of that
  name, or only ``--paradigm``'s), with the variant's own start, settings and rewards;
- before training, the free disk space is checked against an estimate of what
  the checkpoints will take (``seglib.train.launch.checkpoint_bytes``);
- every process writes ``<out>/ranks/rank-<i>.json`` (process index, world
  size, backend, host, pid, times, steps) once its training call returned, so
  a multi-process run shows that each rank took part.

Errors in parameters or inputs print one line naming the file or key and exit 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from seglib.paradigms import PARADIGMS
from seglib.train.launch import launch_accelerate  # noqa: F401  (its old import path)
from seglib.train.run_folder import (  # noqa: F401  (ensure_*, weights_sum: re-exported)
    ensure_base_policy,
    ensure_data,
    ensure_trajectories,
    now,
    run_grpo,
    run_sft,
    weights_sum,
    write_rank,
)


# --------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m seglib.train", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=("sft", "grpo"))
    parser.add_argument("--params", required=True, help="parameter file, e.g. params/full.yaml")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                        help="override one parameter (value read as YAML); repeatable")
    parser.add_argument("--run-dir", default=None,
                        help="run folder holding data/ (and receiving checkpoints/); default outputs/<params stem>")
    parser.add_argument("--paradigm", default=None, choices=PARADIGMS,
                        help="paradigm to train (default: every one in the 'paradigms' parameter)")
    parser.add_argument("--resume", action="store_true", help="continue from the stage's last checkpoint")
    parser.add_argument("--from-base", action="store_true",
                        help="grpo: start from the base policy instead of the SFT checkpoint (RL only, Seg-Zero)")
    parser.add_argument("--variant", default=None, metavar="NAME",
                        help="grpo: train the grpo_variants item NAME (of --paradigm, else of each paradigm with one)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="optimiser steps, overriding sft_steps / grpo_steps (quick checks)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import seglib  # noqa: F401  (torchvision beside CPU torch)
    from accelerate import PartialState

    from seglib.config import REPO_ROOT, ParamError, load_params
    from seglib.data import DataError
    from seglib.system import RunError, seed_everything

    started = now()
    try:
        params = load_params(args.params, args.param)
    except ParamError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    state = PartialState(cpu=params.get("device", "cpu") == "cpu")
    if str(params.get("device", "cpu")).startswith("cuda") and state.num_processes > 1:
        params = {**params, "device": str(state.device)}  # this rank's GPU, not cuda:0 for every rank
    run_dir = Path(args.run_dir or REPO_ROOT / "outputs" / Path(args.params).stem).resolve()
    paradigms = [args.paradigm] if args.paradigm else list(params.get("paradigms") or PARADIGMS)
    if args.variant is not None:
        from seglib.train.settings import grpo_variants

        try:
            having = [v.paradigm for v in grpo_variants(params) if v.name == args.variant]
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        chosen = [p for p in paradigms if p in having]
        if args.stage != "grpo" or not chosen:
            print(f"error: --variant {args.variant!r} needs stage grpo and a grpo_variants item of that name for "
                  f"{paradigms} (items of that name: {having})", file=sys.stderr)
            return 2
        paradigms = chosen
    seed_everything(int(params.get("seed", 0)))
    results = {}
    try:
        for paradigm in paradigms:
            t0 = time.time()
            if args.stage == "sft":
                info = run_sft(run_dir, paradigm, params, state, args.resume, args.max_steps)
            else:
                info = run_grpo(run_dir, paradigm, params, state, args.resume, args.max_steps,
                                start="base" if args.from_base else "sft", variant=args.variant)
            info["seconds"] = round(time.time() - t0, 1)
            state.wait_for_everyone()
            write_rank(Path(info["out_dir"]), state, started, {"stage": args.stage, "paradigm": paradigm, **info})
            results[paradigm] = info
    except (ParamError, RunError, DataError, FileNotFoundError, FileExistsError) as err:
        print(f"error [rank {state.process_index}]: {err}", file=sys.stderr)
        return 2
    if state.is_main_process:
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
