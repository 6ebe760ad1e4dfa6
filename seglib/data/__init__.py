"""The sample record and the one on-disk dataset format every loader shares.

A sample is (image, query, target masks) with 0, 1 or several targets
(METHODS.md, "Data preparation"; VisionReasoner/StAR multi-object and StAR's
empty queries). The on-disk format is COCO plus refer-style referring
expressions, the layout of RefCOCO/+/g (Yu et al. 2016, Mao et al. 2016), with
multi-target and no-target refs laid out as gRefCOCO does (Liu et al. 2023):

``data_dir/``
    ``images/``          the image files (``file_name`` in ``instances.json``;
                         an absolute ``file_name`` points outside the folder,
                         used when real data is exported without copying images)
    ``instances.json``   COCO: ``images``, ``annotations``, ``categories``;
                         ``segmentation`` is a list of polygons (SynthRef writes
                         exact pixel-edge polygons, see
                         :func:`mask_to_pixel_polygons`), compressed RLE with
                         ``counts`` a str, or uncompressed RLE; only the visible
                         part of an occluded object
    ``refs.json``        list of refs ``{ref_id, image_id, ann_id, category_id,
                         no_target, split, sentences: [{sent, raw, tokens,
                         sent_id}], sent_ids, file_name}`` plus seglib's own
                         ``ann_ids`` (0..n), ``kind``, optional ``spec`` (the
                         query program SynthRef checked the sentence with) and
                         ``ignore_ann_ids`` (ReasonSeg's ignore label)
    ``refs(<split_by>).p``  the single-target refs, unchanged, as a protocol-2
                         pickle of plain data: the file the refer API reads
    ``grefs(<split_by>).json``  every ref in gRefCOCO's layout: the file the
                         grefer API reads

Standard fields of a ref (:func:`refer_ref_fields`): one target → ``ann_id``
and ``category_id`` are ints (refer's layout); several → lists of the targets'
ids (gRefCOCO's); none → ``ann_id == category_id == [-1]`` and ``no_target``
true (gRefCOCO's rule). ``grefs`` writes single targets as one-element lists,
as gRefCOCO does.

Why polygons: the refer and grefer ``getMask`` index ``segmentation[0]``, so a
single RLE dict fails there, while pycocotools' ``COCO.annToMask`` rejects a
list of compressed RLE dicts. Polygons are the one segmentation all three read;
tracing pixel edges makes them decode to exactly the drawn mask.

Split names: the refer API's ``getRefIds(split="test")`` returns every ref
whose split name contains "test" (and ``"testA"`` every name containing "A"),
so the held-out reasoning split is written as ``"reasoning"``
(:data:`FILE_SPLITS`); seglib calls it ``"test_reasoning"`` everywhere else
(params, notebooks, evaluation) and :func:`load_samples` maps it back. Old
folders that wrote ``"test_reasoning"`` load unchanged.

``load_samples`` gives one :class:`Sample` per (ref, sentence) with
``sample_id = f"{ref_id}-{k}"``. Masks are ``np.ndarray[bool]`` (H, W); images
are uint8 RGB (H, W, 3); boxes are inclusive ``[x0, y0, x1, y1]``.

Modules: ``sample`` (the record, image reading), ``refer`` (split names, ref
fields, the refer/grefer files), ``coco`` (read/write the folder), ``prepare``
(notebook 01: ``prepare_dataset``, statistics, galleries, 🤗 rows),
``trajectories`` (F_sim trajectory records and files), and the sources
``synthref`` (generated), ``refcoco``, ``reasonseg``.
"""
from seglib.data.coco import load_samples, segmentation_to_rle, write_dataset
from seglib.data.prepare import dataset_statistics, gallery_samples, prepare_dataset, to_hf_dataset, to_hf_rows
from seglib.data.refer import (
    FILE_SPLITS,
    NO_TARGET_ID,
    file_split,
    mask_to_pixel_polygons,
    ref_ann_ids,
    refer_ref_fields,
    seglib_split,
    write_refer_files,
)
from seglib.data.sample import EMPTY_BOX, KINDS, DataError, Sample, check_images, read_image, target_box

__all__ = [
    "DataError",
    "EMPTY_BOX",
    "FILE_SPLITS",
    "KINDS",
    "NO_TARGET_ID",
    "Sample",
    "check_images",
    "dataset_statistics",
    "file_split",
    "gallery_samples",
    "load_samples",
    "mask_to_pixel_polygons",
    "prepare_dataset",
    "read_image",
    "ref_ann_ids",
    "refer_ref_fields",
    "seglib_split",
    "segmentation_to_rle",
    "target_box",
    "to_hf_dataset",
    "to_hf_rows",
    "write_dataset",
    "write_refer_files",
]
