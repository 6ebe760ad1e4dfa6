"""``python -m seglib run PARAMS --dry-run``: check every path, dataset and model a run names, loading
nothing heavy, and list the problems (each naming the parameter and the item)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from seglib.config import NOTEBOOK_DIR, choice_problem, load_params
from seglib.runs.sam2_check import sam2_config_exists, check_sam2_checkpoint

PATH_SUFFIXES = ("_path", "_dir", "_root", "_file", "_checkpoint")

#: refer datasets and the splitBy values their refs files exist for (refer toolkit: refs(<splitBy>).p)
REFER_SPLIT_BY: dict[str, tuple[str, ...]] = {"refcoco": ("unc", "google"), "refcoco+": ("unc",),
                                              "refcocog": ("umd", "google")}
REASONSEG_SPLITS = ("train", "val", "test")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
#: refs whose image files are checked (first N of the refs file): enough to catch a wrong image_dir quickly
IMAGE_PROBES = 20


def dry_run(params_path: str | Path | None, overrides: list[str] = (), notebook_dir: Path = NOTEBOOK_DIR) -> list[str]:
    """Validate parameters and check the contents of every path and model they name, loading nothing heavy.

    Returns the list of problems (empty when the run could start); each names the parameter and the item.

    * Paths (keys ending in ``_path``, ``_dir``, ``_root``, ``_file``, ``_checkpoint``) must exist.
    * ``dataset: refcoco``: ``refcoco_dataset`` is one of refcoco / refcoco+ / refcocog with a
      ``refcoco_split_by`` that dataset has (:data:`REFER_SPLIT_BY`); ``data_root`` holds
      ``<dataset>/refs(<splitBy>).p`` (a list of refs, read with the loader's safe unpickler) and
      ``<dataset>/instances.json`` (a COCO file naming the refs' images and annotations), and the
      first :data:`IMAGE_PROBES` refs' images exist under ``image_dir`` (default: the refer layout).
    * ``reasonseg_root`` (and ``data_root`` with ``dataset: reasonseg``): the split folders the
      loader reads exist and each holds at least one ``<name>.json`` with an image beside it.
    * ``policy``: a local folder or a hub name already in the local cache (nothing is downloaded),
      holding ``config.json`` and weights (or a peft adapter whose base model passes the same check).
    * ``sam2_config`` is a config shipped by the ``sam2`` package, and ``sam2_checkpoint`` holds a
      ``{"model": state_dict}`` whose keys and shapes are those of the model the config describes
      (built on the meta device: no memory, no GPU; the checkpoint is read onto the meta device too).
    """
    params = load_params(params_path, overrides, notebook_dir=notebook_dir, check_choices=False)
    problems: list[str] = []
    missing: set[str] = set()
    for key, value in sorted(params.items()):
        if key not in ("refcoco_dataset", "refcoco_split_by"):  # checked below, with the refer layout
            problem = choice_problem(key, value)
            if problem:
                problems.append(f"{key}: {problem}")
    for key, value in sorted(params.items()):
        if value in (None, "") or not isinstance(value, str):
            continue
        if key.endswith(PATH_SUFFIXES) and not Path(value).expanduser().exists():
            problems.append(f"{key}: path {value} does not exist")
            missing.add(key)
    problems += _check_data(params, missing)
    policy = params.get("policy")
    if isinstance(policy, str) and policy:
        folder = Path(policy).expanduser()
        if not folder.exists():
            cached = _hub_cache_folder(policy)
            if cached is None:
                problems.append(f"policy: {policy} is neither a local folder nor in the local model cache")
            else:
                problems += _check_policy_folder("policy", cached)
        else:
            problems += _check_policy_folder("policy", folder)
    config = params.get("sam2_config")
    if isinstance(config, str) and config and not sam2_config_exists(config):
        problems.append(f"sam2_config: {config} is not a config of the installed sam2 package")
    elif (isinstance(config, str) and config and params.get("segmenter", "sam2") == "sam2"
          and isinstance(params.get("sam2_checkpoint"), str) and "sam2_checkpoint" not in missing):
        problems += check_sam2_checkpoint(config, params["sam2_checkpoint"])
    return problems


def _check_data(params: dict[str, Any], missing: set[str]) -> list[str]:
    problems: list[str] = []
    dataset = params.get("dataset")
    root = params.get("data_root")
    if dataset == "refcoco":
        name, split_by = params.get("refcoco_dataset"), params.get("refcoco_split_by")
        if name not in REFER_SPLIT_BY:
            problems.append(f"refcoco_dataset: {name!r} is not a refer dataset; choose from {sorted(REFER_SPLIT_BY)}")
        elif split_by not in REFER_SPLIT_BY[name]:
            problems.append(f"refcoco_split_by: {name} has no split {split_by!r}; "
                            f"it has {list(REFER_SPLIT_BY[name])}")
        elif not root:
            problems.append("data_root: dataset refcoco needs the refer root (holding <dataset>/refs(<splitBy>).p)")
        elif "data_root" not in missing:
            problems += _check_refer(Path(root).expanduser(), name, split_by, params.get("image_dir"))
    elif dataset == "reasonseg":
        if not root:
            problems.append("data_root: dataset reasonseg needs the ReasonSeg root (holding train/ val/ test/)")
        elif "data_root" not in missing:
            problems += _check_reasonseg("data_root", Path(root).expanduser(), REASONSEG_SPLITS)
    rs = params.get("reasonseg_root")
    if isinstance(rs, str) and rs and "reasonseg_root" not in missing:
        problems += _check_reasonseg("reasonseg_root", Path(rs).expanduser(), ("val", "test"))
    return problems


def _check_refer(root: Path, name: str, split_by: str, image_dir: str | None) -> list[str]:
    from seglib.data import DataError
    from seglib.data.refcoco import load_refs_pickle

    refs_path = root / name / f"refs({split_by}).p"
    inst_path = root / name / "instances.json"
    problems = []
    if not refs_path.is_file():
        present = sorted(str(p.relative_to(root)) for p in root.glob("*/refs(*).p"))
        problems.append(f"data_root: {root} holds no {name}/refs({split_by}).p"
                        + (f" (it holds {present})" if present else " (no refs(<splitBy>).p file at all)"))
    if not inst_path.is_file():
        problems.append(f"data_root: {root} holds no {name}/instances.json")
    if problems:
        return problems
    try:
        refs = load_refs_pickle(refs_path, root)
    except DataError as err:
        return [f"data_root: {err}"]
    if not refs:
        return [f"data_root: {refs_path} holds no refs"]
    keys = {"ref_id", "ann_id", "image_id", "split", "sentences"}
    bad = [i for i, r in enumerate(refs) if not isinstance(r, dict) or not keys <= set(r)]
    if bad:
        return [f"data_root: {refs_path}: ref #{bad[0]} lacks some of {sorted(keys)} ({len(bad)} refs malformed)"]
    try:
        instances = json.loads(inst_path.read_text())
        images = {int(im["id"]): im for im in instances["images"]}
        anns = {int(a["id"]) for a in instances["annotations"]}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        return [f"data_root: {inst_path} is not a COCO instances file ({err!r})"]
    no_image = [r["ref_id"] for r in refs if int(r["image_id"]) not in images]
    no_ann = [r["ref_id"] for r in refs if int(r["ann_id"]) not in anns]
    if no_image:
        problems.append(f"data_root: {len(no_image)} refs of {refs_path.name} name images not in {inst_path} "
                        f"(first: ref {no_image[0]})")
    if no_ann:
        problems.append(f"data_root: {len(no_ann)} refs of {refs_path.name} name annotations not in {inst_path} "
                        f"(first: ref {no_ann[0]})")
    img_dir = Path(image_dir).expanduser() if image_dir else root / "images" / "mscoco" / "images" / "train2014"
    key = "image_dir" if image_dir else "data_root"
    probes = [images[int(r["image_id"])]["file_name"] for r in refs[:IMAGE_PROBES] if int(r["image_id"]) in images]
    absent = [f for f in probes if not (img_dir / f).is_file()]
    if absent:
        problems.append(f"{key}: {len(absent)} of the first {len(probes)} refs' images are not in {img_dir} "
                        f"(first: {absent[0]})")
    return problems


def _check_reasonseg(key: str, root: Path, splits: tuple[str, ...]) -> list[str]:
    from seglib.data.reasonseg import IMAGE_SUFFIXES

    found = [s for s in splits if (root / s).is_dir()]
    if not found:
        return [f"{key}: ReasonSeg root {root} has none of the split folders {list(splits)}"]
    problems = []
    for split in found:
        jsons = sorted((root / split).glob("*.json"))
        if not jsons:
            problems.append(f"{key}: ReasonSeg split folder {root / split} holds no <name>.json annotation")
            continue
        lone = [j.name for j in jsons if not any(j.with_suffix(s).is_file() for s in IMAGE_SUFFIXES)]
        if lone:
            problems.append(f"{key}: {len(lone)} annotations in {root / split} have no image beside them "
                            f"(first: {lone[0]})")
    return problems


def _check_policy_folder(key: str, folder: Path, depth: int = 0) -> list[str]:
    """A checkpoint folder holds config.json and weights, or a peft adapter on a base that does."""
    if not folder.is_dir():
        return [f"{key}: {folder} is not a folder (a checkpoint is a folder with config.json and weights)"]
    if (folder / "adapter_config.json").is_file():
        if not any((folder / w).is_file() for w in ADAPTER_WEIGHTS):
            return [f"{key}: adapter folder {folder} holds adapter_config.json but no {' or '.join(ADAPTER_WEIGHTS)}"]
        try:
            base = json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            return [f"{key}: {folder / 'adapter_config.json'} names no base model ({err!r})"]
        base_folder = Path(str(base)).expanduser()
        if not base_folder.exists():
            base_folder = _hub_cache_folder(str(base))
            if base_folder is None:
                return [f"{key}: the base model {base} of adapter {folder} is neither a folder nor cached"]
        return [] if depth else _check_policy_folder(f"{key} (base of the adapter)", base_folder, depth + 1)
    problems = []
    config = folder / "config.json"
    if not config.is_file():
        problems.append(f"{key}: {folder} holds no config.json (not a model checkpoint)")
    else:
        try:
            if "model_type" not in json.loads(config.read_text()):
                problems.append(f"{key}: {config} has no model_type")
        except json.JSONDecodeError as err:
            problems.append(f"{key}: {config} is not valid JSON ({err})")
    if not any((folder / w).is_file() for w in WEIGHT_FILES) and not list(folder.glob("model-*.safetensors")):
        problems.append(f"{key}: {folder} holds no weights ({', '.join(WEIGHT_FILES[::2])} or shards)")
    if not any((folder / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json")):
        problems.append(f"{key}: {folder} holds no tokenizer files (tokenizer.json / tokenizer_config.json)")
    return problems


def _hub_cache_folder(name: str) -> Path | None:
    """The cached snapshot folder of a hub model, or None when it is not in the local cache."""
    try:
        from huggingface_hub import try_to_load_from_cache

        path = try_to_load_from_cache(name, "config.json")
    except Exception:  # an invalid repo id is simply "not cached"
        return None
    return Path(path).parent if isinstance(path, str) else None


def _in_hub_cache(name: str) -> bool:
    return _hub_cache_folder(name) is not None
