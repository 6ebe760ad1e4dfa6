"""The base stage: generic grounding, a stand-in for the pre-training a real base model brings.

Seg-Zero's claim is that RL from a *base* model generalises out of domain
where SFT on the same data does not. A real base model (Qwen2.5-VL) already
writes parsable grounding answers before it sees the study's data; a tiny
policy trained from scratch writes nothing parsable, so RL from it has no
reward to climb. This stage gives the tiny policy that starting point on a
different task mix from the study's:

- queries are category names only (``"find every crescent"``): none of the
  study's referring styles (colour, size, position, relations) and no
  reasoning queries;
- every object of the named shape is a target (one or several);
- the answer is the base paradigm's format with the options the run gives it
  (the study: boxpoints' list answer *without* the think block).

``grounding_samples`` builds those samples from the images of a split (one
per shape present in an image, shapes in alphabetical order);
``train_base_stage`` runs one SFT stage on them from the dense-pretrained
policy and leaves the result in the run's base-policy folder, so that every
later SFT stage and the RL-only run start from it.
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seglib.data import Sample
from seglib.masks import encode_rle

#: The sample kind of a grounding query (not one of the study's kinds).
GROUNDING_KIND = "grounding"
#: The one query template of the base stage.
GROUNDING_TEMPLATE = "find every {shape}"
#: Marker file written into the base-policy folder once the stage has finished.
DONE_FILE = "base_stage.json"


def grounding_samples(samples: Sequence[Sample], scene: dict[str, list[Any]], max_images: int | None = None) -> list[Sample]:
    """One grounding sample per (image, shape present) over the images of ``samples``, in first-seen image order.

    ``scene``: every object of every image (``seglib.train.pretrain_vision.scene_objects``,
    keyed by image path). Objects without a shape attribute are skipped; an image
    missing from ``scene`` raises ``KeyError`` naming it.
    """
    out: list[Sample] = []
    images = list(dict.fromkeys(s.image_path for s in samples))[:max_images]
    first = {s.image_path: s for s in reversed(samples)}
    for path in images:
        if path not in scene:
            raise KeyError(f"{path}: image of sample {first[path].sample_id} has no objects in the scene index")
        ref = first[path]
        by_shape: dict[str, list[Any]] = {}
        for obj in scene[path]:
            if obj.shape:
                by_shape.setdefault(obj.shape, []).append(obj)
        for shape in sorted(by_shape):
            out.append(Sample(sample_id=f"{ref.split}-g{len(out)}", image_path=path,
                              query=GROUNDING_TEMPLATE.format(shape=shape), kind=GROUNDING_KIND, split=ref.split,
                              height=ref.height, width=ref.width,
                              target_rles=[encode_rle(o.mask) for o in by_shape[shape]],
                              meta={"shape": shape, "n_targets": len(by_shape[shape])}))
    return out


def base_stage_done(base_dir: str | Path) -> dict | None:
    """The finished base stage's record in ``base_dir`` (None when the stage has not run there)."""
    path = Path(base_dir) / DONE_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def install_base(stage_dir: str | Path, base_dir: str | Path, record: dict) -> None:
    """Copy the trained stage's weights and model config over the base-policy folder and mark it finished.

    The tokenizer and processor stay the base folder's own (the stage trained with them).
    """
    stage_dir, base_dir = Path(stage_dir), Path(base_dir)
    weights = sorted(stage_dir.glob("*.safetensors"))
    if not weights or not (stage_dir / "config.json").is_file():
        raise FileNotFoundError(f"{stage_dir}: no finished model (config.json + *.safetensors) to install as the base")
    for item in [stage_dir / "config.json", *weights, *stage_dir.glob("generation_config.json")]:
        shutil.copy2(item, base_dir / item.name)
    (base_dir / DONE_FILE).write_text(json.dumps(record, indent=2) + "\n")
