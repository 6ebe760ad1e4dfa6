"""A SAM2 checkpoint against its config, on the meta device (no memory, no GPU): keys and shapes."""
from __future__ import annotations

import importlib.util
from pathlib import Path


def sam2_meta_state_shapes(config: str) -> dict[str, tuple[int, ...]]:
    """Parameter and buffer shapes of the SAM2 model ``config`` describes, built on the meta device."""
    import torch
    from hydra import compose
    from hydra.utils import instantiate

    import sam2  # noqa: F401  (initialises hydra's config search path on the sam2 package)

    packaged = sam2_config_exists(config) and not Path(config).is_file()
    if packaged:
        cfg = compose(config_name=config)
    else:
        from omegaconf import OmegaConf

        cfg = OmegaConf.load(config)
    from torch.overrides import TorchFunctionMode

    class _SmallOnCpu(TorchFunctionMode):
        # Hiera reads its drop-path schedule with .item(): that one small tensor is made on the CPU
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = dict(kwargs or {})
            if func in (torch.linspace, torch.arange, torch.logspace) and "device" not in kwargs:
                kwargs["device"] = "cpu"
            return func(*args, **kwargs)

    with torch.device("meta"), _SmallOnCpu():
        model = instantiate(cfg.model, _recursive_=True)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_sam2_checkpoint(config: str, checkpoint: str | Path) -> list[str]:
    """Problems of a SAM2 checkpoint against a config: missing / unexpected keys, shape mismatches."""
    import torch

    try:
        state = torch.load(str(checkpoint), map_location="meta", weights_only=True, mmap=True)
    except Exception as err:  # noqa: BLE001  (any unreadable file is one problem)
        try:
            state = torch.load(str(checkpoint), map_location="meta", weights_only=True)
        except Exception:  # noqa: BLE001
            return [f"sam2_checkpoint: {checkpoint} is not a readable torch checkpoint ({type(err).__name__}: {err})"]
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        return [f"sam2_checkpoint: {checkpoint} does not hold {{'model': state_dict}} (the SAM2 checkpoint layout)"]
    have = {k: tuple(v.shape) for k, v in state["model"].items() if hasattr(v, "shape")}
    try:
        want = sam2_meta_state_shapes(config)
    except Exception as err:  # noqa: BLE001
        return [f"sam2_config: {config} does not build a model ({type(err).__name__}: {err})"]
    absent = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    wrong = sorted(k for k in set(want) & set(have) if want[k] != have[k])
    if not (absent or extra or wrong):
        return []
    detail = []
    if wrong:
        detail.append(f"{len(wrong)} shapes differ (first: {wrong[0]} {have[wrong[0]]} in the checkpoint, "
                      f"{want[wrong[0]]} in the config)")
    if absent:
        detail.append(f"{len(absent)} keys missing (first: {absent[0]})")
    if extra:
        detail.append(f"{len(extra)} unexpected keys (first: {extra[0]})")
    return [f"sam2_checkpoint: {checkpoint} does not match sam2_config {config}: " + "; ".join(detail)]


def sam2_config_exists(config: str) -> bool:
    if Path(config).is_file():
        return True
    spec = importlib.util.find_spec("sam2")
    if spec is None or not spec.submodule_search_locations:
        return False
    return any((Path(loc) / config).is_file() for loc in spec.submodule_search_locations)
