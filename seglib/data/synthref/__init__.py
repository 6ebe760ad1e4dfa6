"""SynthRef: a procedural referring / reasoning segmentation dataset.

The embedded stand-in for RefCOCO/+/g (referring expressions), ReasonSeg
(implicit "reasoning" queries, LISA/Seg-Zero), VisionReasoner's multi-object
queries and StAR's empty queries (ReasonSeg-X). It writes the COCO-style
folder that :func:`seglib.data.load_samples` reads (layout in
:mod:`seglib.data`): ``images/*.png``, ``instances.json`` (visible-part masks
as exact pixel-edge polygons), ``refs.json`` (refer / gRefCOCO fields plus
``ann_ids`` 0..n, ``kind`` and the query program ``spec`` each sentence was
checked with), and the two files the standard APIs read:

- ``refs(synthref).p``: the single-target refs for the refer API
  (lichengunc/refer ``REFER``): ``getRefIds``, ``getAnnIds``, ``loadRefs``,
  ``getRefBox`` and ``getMask`` work on them;
- ``grefs(synthref).json``: every ref for gRefCOCO's ``G_REFER`` (multi-target
  ``ann_id`` lists, no-target ``ann_id == [-1]`` with ``no_target`` true);
- ``instances.json`` also reads with pycocotools ``COCO`` / ``annToMask``.

Both APIs look in ``<data_root>/<dataset>/`` and accept only their own dataset
names, so point them at a folder that links the SynthRef folder under such a
name, e.g. ``ln -s <run>/data view/refcoco`` then
``REFER("view", "refcoco", "synthref")``; ``view/grefcoco`` and
``G_REFER("view", "grefcoco", "synthref")`` likewise. On disk the held-out
reasoning split is named ``"reasoning"`` so that refer's ``split="test"``
(which matches any name containing "test") leaves it out; seglib calls it
``"test_reasoning"``.

Scenes: a plain, gradient or textured background and 1-6 objects drawn from
ten shapes (convex: circle, square, triangle, hexagon; with a hole: ring;
concave or thin: star, crescent, cross, bar; irregular: blob) in several
colours, sizes, rotations and fills. Later objects occlude earlier ones; an
annotation holds only the visible pixels, and placements that would leave an
object mostly hidden are rejected. Masks are drawn without anti-aliasing and
the image takes the object's colour on exactly the mask's pixels.

Queries are programs over the scene (shape / colour / size filters, an
extreme position, a relation to a landmark, implicit properties) rendered to
text; each is evaluated against the scene and kept only if it selects exactly
its targets (ambiguous spatial cases are rejected). ``reasoning`` queries use
properties that the other kinds never name (holes, corners, rolling, things a
colour looks like) and by default appear only in the held-out
``test_reasoning`` split. Splits are disjoint by image. The same arguments
give byte-identical files.

Modules: ``scene`` (drawing), ``queries`` (programs, their evaluation and
text), ``writer`` (``generate``, ``label_maps``).
"""
from seglib.data.sample import KINDS
from seglib.data.synthref.queries import PROPERTIES, evaluate, render
from seglib.data.synthref.scene import COLOURS, DIFFICULTIES, SHAPES, make_scene
from seglib.data.synthref.writer import REFER_SPLIT_BY, SPLITS, generate, label_maps

__all__ = ["COLOURS", "DIFFICULTIES", "KINDS", "PROPERTIES", "REFER_SPLIT_BY", "SHAPES", "SPLITS", "evaluate", "generate", "label_maps", "make_scene"]
