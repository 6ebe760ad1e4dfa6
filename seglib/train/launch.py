"""Launching and sizing a training stage: ``accelerate launch`` from a notebook, and the one disk estimate.

``launch_accelerate`` hands one stage to ``accelerate launch -m seglib.train``
(notebooks 03/04 with ``launcher: accelerate``). ``checkpoint_space`` is the
estimate of what a stage's checkpoints take: per kept checkpoint the weights
plus two fp32 Adam moments of the trainable parameters, plus the final model.
``check_checkpoint_space`` applies it to a loaded model (the trainers, before
the first step); ``checkpoint_bytes`` to a policy folder not yet loaded (the
command line, before anything is written).
"""
from __future__ import annotations

import sys
from pathlib import Path


def checkpoint_space(weights: int, moments: int, keep: int | None) -> int:
    """Bytes for ``keep`` kept checkpoints (all when None, counted as 3) of weights + moments, plus the final weights."""
    return int((weights + moments) * (keep or 3) + weights)


def check_checkpoint_space(model, output_dir, keep: int | None) -> None:
    """Before training: stop cleanly if ``output_dir``'s disk cannot hold the checkpoints (``checkpoint_space``)."""
    from seglib.system import check_free_space

    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    moments = sum(p.numel() * 8 for p in model.parameters() if p.requires_grad)
    check_free_space(output_dir, checkpoint_space(weights, moments, keep))


def checkpoint_bytes(policy: str, save_total_limit: int | None, lora: bool = False) -> int:
    """``checkpoint_space`` of the policy folder ``policy`` (a path or a cached hub name), before loading it.

    The weights' size is read from the policy folder (or the local hub cache);
    unknown sizes count as 0 (nothing is downloaded to find out).
    """
    folder = Path(policy)
    if not folder.is_dir():
        try:
            from huggingface_hub import try_to_load_from_cache

            hit = try_to_load_from_cache(policy, "config.json")
            folder = Path(hit).parent if isinstance(hit, str) else folder
        except Exception:
            pass
    weights = sum(p.stat().st_size for p in folder.glob("*.safetensors")) if folder.is_dir() else 0
    # fp32 Adam: two moments the size of the trained weights; LoRA trains (and saves) a small share of the base
    trained = weights * 0.05 if lora else weights
    return checkpoint_space(trained, 2 * trained, save_total_limit) + (weights - trained)


def launch_accelerate(stage: str, run_dir: str | Path, accelerate_config: str | Path, params_file: str | Path | None = None,
                      overrides: list[str] = (), paradigms: list[str] | None = None, resume: bool = True,
                      extra_args: list[str] = ()) -> None:
    """Hand one training stage to ``accelerate launch -m seglib.train`` (notebooks 03/04 with ``launcher: accelerate``).

    ``params_file`` defaults to ``<run_dir>/params.yaml``, the resolved parameters
    the runner (``python -m seglib run``) writes, so a papermill-driven run trains
    with exactly its own parameters. Each paradigm is one launch, resumed from its
    last checkpoint by default. The launcher's output streams into the notebook;
    a failed launch raises ``seglib.system.RunError`` naming the command.
    """
    import shlex
    import subprocess

    from seglib.system import RunError

    run_dir = Path(run_dir).resolve()
    params_file = Path(params_file) if params_file else run_dir / "params.yaml"
    if not params_file.is_file():
        raise RunError(f"{params_file}: no parameter file for the launcher (pass params_file=)")
    if not Path(accelerate_config).is_file():
        raise RunError(f"accelerate config {accelerate_config} does not exist")
    for paradigm in paradigms or [None]:
        cmd = [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", "--config_file",
               str(accelerate_config), "-m", "seglib.train", stage, "--params", str(params_file), "--run-dir",
               str(run_dir)]
        cmd += (["--paradigm", paradigm] if paradigm else []) + (["--resume"] if resume else [])
        cmd += [a for o in overrides for a in ("-p", o)] + list(extra_args)
        print("$", shlex.join(cmd), flush=True)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        tail: list[str] = []
        for line in proc.stdout:
            print(line, end="", flush=True)
            tail = (tail + [line])[-20:]
        if proc.wait() != 0:
            raise RunError(f"{stage} launch failed (exit {proc.returncode}): {shlex.join(cmd)}\n"
                           f"  last lines: {''.join(tail[-5:]).strip()}")
