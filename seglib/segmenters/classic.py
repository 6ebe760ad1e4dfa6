"""Weightless default segmenter: seeded watershed cut on the pixel-edge graph.

Algorithm (the q → ∞ "power watershed" limit of the random walker; Couprie,
Grady, Najman & Talbot, PAMI 2011; equivalently seeded region growing, Adams &
Bischof 1994, or minimax-path labelling). Pixels are graph nodes, 4-neighbours
are joined by an edge weighted with their CIE-Lab colour difference. Each pixel
takes the label of the seed it reaches by the path whose largest edge is
smallest, so the cut falls exactly between two pixels across a colour step:
no smoothing, no ±1 px boundary slack (SynthRef draws masks without
anti-aliasing and paints the object colour on exactly the mask's pixels, so the
pixel-exact boundary is reachable; a 1 px error on a 7 px-radius object would
cost ~25 % IoU).

It runs as ``skimage.segmentation.watershed`` on the "crack grid": a
(2H-1, 2W-1) image whose even-even nodes are pixels (height 0) and whose
odd nodes hold the edge weights, so flooding in order of height is Prim's
minimax labelling. The grid is built once per image in ``set_image``.

Seeds:
  * foreground: positive points (with a box and no positive point: the box centre);
  * background: negative points; without a box, the image border, except border pixels whose
    colour matches a positive seed (an object that touches the border).

A box is a hint, not a wall, but growth past it is bounded. Let B be the box, R_B the 1 px ring
just outside it, and E the box enlarged on each side by ``max(box_margin_px, box_margin × side)``
(the side of that axis; clipped to the image), R_E its outer 1 px ring.
  1. A positive point whose colour (within ``min_step``) matches more than ``ring_share`` of R_B,
     while another positive point's does not, lies on the background the box was drawn against:
     it seeds nothing. (If every positive point matches, they are all kept: a box drawn inside
     one large object looks the same.)
  2. If no R_B pixel is coloured like a (kept) positive point, the box holds the object: R_B seeds
     background and the mask stays inside B (a box alone, with its centre seed, is always this case).
  3. Otherwise the box cuts through the clicked object: R_B and R_E seed background except their
     pixels coloured like a positive point, and the mask may grow past B up to E, where it is
     clipped. A box that clips an object therefore keeps the object as long as the object fits in
     E (much as SAM returns the whole object for a box that clips it), and a positive point that
     still lands on background can flood at most E, never the image.
  4. With a box, the object is what inside it differs from the ring around it: after the cut,
     colour-homogeneous regions of the allowed area (B or E) whose mean colour is farther than
     ``box_contrast`` from every background-seeded R_B pixel are added when they connect to the
     mask through such regions (an object made of differently coloured parts, clicked on one).
A colour-model pass (before step 4) flips foreground regions that are enclosed by a
strong edge and whose colour is much closer to the background seeds than to
the foreground seeds (the hole of a ring would otherwise be a tie).

``mask_logits``: the previous ``Prediction.logits`` ((H, W) float, +1 inside, -1
outside). Clicks carry all the information here, so it is used only when a prompt
has neither points nor box (the previous mask is returned unchanged).
``score``: the mean colour step across the mask's boundary, mapped to [0, 1).
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage
from scipy.spatial.distance import cdist
from skimage.segmentation import watershed

from seglib.segmenters.base import Prediction, Prompt, Segmenter


def lab_image(image: np.ndarray) -> np.ndarray:
    """uint8 RGB → float32 CIE-Lab (L in [0, 100])."""
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def crack_grid(lab: np.ndarray) -> np.ndarray:
    """(2H-1, 2W-1) float32 grid: pixels at even-even nodes (0), 4-edge colour steps at odd nodes."""
    h, w, _ = lab.shape
    grid = np.full((2 * h - 1, 2 * w - 1), np.float32(1e4))
    grid[::2, ::2] = 0.0
    grid[::2, 1::2] = np.linalg.norm(lab[:, 1:] - lab[:, :-1], axis=2)
    grid[1::2, ::2] = np.linalg.norm(lab[1:] - lab[:-1], axis=2)
    return grid


class ClassicSegmenter(Segmenter):
    """Seeded watershed cut (see module docstring). ``enclosed_ratio``: how much closer (in
    Lab distance) an enclosed foreground region must be to the background seeds to flip.
    ``min_step``: the Lab step that separates colours. Box rule: ``box_margin`` (fraction of the
    box side) and ``box_margin_px`` (floor, px) enlarge the box to the area a clipped object may
    grow into; ``ring_share`` (None: off) distrusts positive points coloured like that share of the
    box's ring; ``box_contrast`` (Lab; None: off) adds box regions that differ from the ring."""

    name = "classic"

    def __init__(self, enclosed_ratio: float = 0.5, min_step: float = 12.0, box_margin: float = 0.5,
                 box_margin_px: int = 3, ring_share: float | None = 0.5, box_contrast: float | None = 25.0) -> None:
        super().__init__()
        self.enclosed_ratio = enclosed_ratio
        self.min_step = min_step
        self.box_margin = box_margin
        self.box_margin_px = box_margin_px
        self.ring_share = ring_share
        self.box_contrast = box_contrast
        self._lab: np.ndarray | None = None
        self._grid: np.ndarray | None = None

    def _encode(self, image: np.ndarray) -> None:
        self._lab = lab_image(image)
        self._grid = crack_grid(self._lab)
        self._valid = self._grid < 1e4  # the odd-odd nodes join nothing; leaving them out saves ~35 %

    def _predict_batch(self, prompts: list[Prompt]) -> list[Prediction]:
        return [self._predict_one(p) for p in prompts]

    # ---------------------------------------------------------------------------------------
    def _predict_one(self, p: Prompt) -> Prediction:
        h, w = self.image_hw
        pts = np.rint(np.asarray(p.points_xy)).astype(int).reshape(-1, 2)
        labels = np.asarray(p.labels).reshape(-1)
        if len(pts) == 0 and p.box_xyxy is None:
            if p.mask_logits is not None:
                prev = np.asarray(p.mask_logits, np.float32).reshape(h, w) > 0
                return self._prediction(prev)
            return self._prediction(np.zeros((h, w), bool))
        markers = np.zeros((h, w), np.int32)
        fg_pts = pts[labels == 1]
        bg_pts = pts[labels == 0]
        allowed = ring = None
        if p.box_xyxy is not None:
            box = tuple(int(v) for v in np.rint(p.box_xyxy))
            fg_pts = self._trusted(fg_pts, box)
            seeds, allowed, ring = self._box_seeds(box, fg_pts)
            markers[seeds] = 2
            if len(fg_pts) == 0:
                fg_pts = np.array([[(box[0] + box[2]) // 2, (box[1] + box[3]) // 2]])
        else:
            markers[self._border(fg_pts)] = 2
        if len(fg_pts) == 0:  # only negative clicks: nothing to grow
            return self._prediction(np.zeros((h, w), bool))
        markers[bg_pts[:, 1], bg_pts[:, 0]] = 2
        markers[fg_pts[:, 1], fg_pts[:, 0]] = 1
        grid_markers = np.zeros(self._grid.shape, np.int32)
        grid_markers[::2, ::2] = markers
        labels_grid = watershed(self._grid, grid_markers, connectivity=1, mask=self._valid)
        mask = labels_grid[::2, ::2] == 1
        if allowed is not None:
            mask &= allowed
        mask = self._flip_enclosed(mask, fg_pts)
        if allowed is not None:
            mask = self._grow_in_box(mask, allowed, ring & (markers == 2))
        return self._prediction(mask)

    # ------------------------------------------------------------------------------ box rule
    @staticmethod
    def _rect(shape: tuple[int, int], x0: int, y0: int, x1: int, y1: int) -> tuple[np.ndarray, np.ndarray]:
        """(inside, ring): bool (H, W) masks of the inclusive rectangle (clipped to the image)
        and of its outer 1 px ring."""
        h, w = shape
        inside = np.zeros((h, w), bool)
        inside[max(0, y0): max(0, y1 + 1), max(0, x0): max(0, x1 + 1)] = True
        return inside, ndimage.binary_dilation(inside) & ~inside

    def _trusted(self, fg_pts: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """Step 1: the positive points not coloured like more than ``ring_share`` of the box's ring (all if none is)."""
        if self.ring_share is None or len(fg_pts) == 0:
            return fg_pts
        _, ring = self._rect(self._lab.shape[:2], *box)
        if not ring.any():
            return fg_pts
        cols = self._lab[ring]
        keep = np.array([np.mean(np.linalg.norm(cols - self._lab[y, x], axis=1) <= self.min_step) <= self.ring_share
                         for x, y in fg_pts], bool)
        return fg_pts[keep] if keep.any() else fg_pts

    def _box_seeds(self, box: tuple[int, int, int, int], fg_pts: np.ndarray):
        """Steps 2-3: (background seeds, the area the mask may cover, R_B), all bool (H, W)."""
        x0, y0, x1, y1 = box
        shape = self._lab.shape[:2]
        inside, ring = self._rect(shape, *box)
        cut = ring & self._matches(ring, fg_pts)
        if not cut.any():  # the box holds the object: a wall
            return ring, inside, ring
        mx = max(self.box_margin_px, int(round(self.box_margin * (x1 - x0 + 1))))
        my = max(self.box_margin_px, int(round(self.box_margin * (y1 - y0 + 1))))
        grown, outer = self._rect(shape, x0 - mx, y0 - my, x1 + mx, y1 + my)
        both = ring | outer
        return both & ~self._matches(both, fg_pts), grown, ring

    def _grow_in_box(self, mask: np.ndarray, allowed: np.ndarray, ring_bg: np.ndarray) -> np.ndarray:
        """Step 4: add the regions of ``allowed`` (split at colour steps >= ``min_step``) whose mean
        colour is farther than ``box_contrast`` from every background-seeded ring pixel ``ring_bg``
        and that join the mask through such regions."""
        if self.box_contrast is None or not mask.any() or not ring_bg.any():
            return mask
        free = allowed & ~mask
        if not free.any():
            return mask
        regions, _, _, means = self._regions(free)
        far = cdist(means, self._lab[ring_bg]).min(axis=1) > self.box_contrast
        far[0] = False  # label 0: pixels outside ``free``
        cand = far[regions] & free
        if not cand.any():
            return mask
        parts, _ = ndimage.label(mask | cand)
        joined = np.isin(parts, np.unique(parts[mask]))
        return mask | (joined & cand)

    def _regions(self, where: np.ndarray):
        """Colour-homogeneous regions of ``where``: 4-neighbours joined across steps < ``min_step``.
        Returns (labels (H, W) int, n, pixel count per label, mean Lab colour per label)."""
        g, lab = self._grid, self._lab
        joined = np.zeros(g.shape, bool)
        joined[::2, ::2] = where
        joined[::2, 1::2] = where[:, 1:] & where[:, :-1] & (g[::2, 1::2] < self.min_step)
        joined[1::2, ::2] = where[1:] & where[:-1] & (g[1::2, ::2] < self.min_step)
        regions, n = ndimage.label(joined)
        region = regions[::2, ::2]
        flat = region.ravel()
        counts = np.bincount(flat, minlength=n + 1)
        means = np.stack([np.bincount(flat, lab[..., c].ravel(), minlength=n + 1) for c in range(3)], 1)
        means /= np.maximum(counts, 1)[:, None]
        return region, n, counts, means

    def _matches(self, where: np.ndarray, fg_pts: np.ndarray) -> np.ndarray:
        """Pixels of ``where`` (bool (H, W)) whose colour is within ``min_step`` of a positive point's colour."""
        out = np.zeros(where.shape, bool)
        if len(fg_pts) and where.any():
            fg_cols = self._lab[fg_pts[:, 1], fg_pts[:, 0]]
            d = np.linalg.norm(self._lab[where][:, None, :] - fg_cols[None], axis=2).min(axis=1)
            out[where] = d <= self.min_step
        return out

    def _border(self, fg_pts: np.ndarray) -> np.ndarray:
        """Image-border background seeds, except pixels coloured like a positive point (an object touching the border)."""
        border = np.zeros(self._lab.shape[:2], bool)
        border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
        return border & ~self._matches(border, fg_pts)

    def _flip_enclosed(self, mask: np.ndarray, fg_pts: np.ndarray) -> np.ndarray:
        """Foreground regions (split at colour steps >= ``min_step``) without a positive seed whose
        mean colour is much nearer the background just outside the mask than the positive
        seeds' colours go to background. Fixes the hole of a ring, which the minimax cut
        leaves to a tie (the step into the hole equals the step out of the ring)."""
        if not mask.any():
            return mask
        region, n, counts, means = self._regions(mask)
        if n <= 1:
            return mask
        lab = self._lab
        seeded = set(region[fg_pts[:, 1], fg_pts[:, 0]].tolist())
        outside = ndimage.binary_dilation(mask, iterations=2) & ~mask
        if not outside.any():
            return mask
        out_cols = lab[outside]
        fg_cols = lab[fg_pts[:, 1], fg_pts[:, 0]]
        flip = np.zeros(n + 1, bool)
        for r in range(1, n + 1):
            if r in seeded or counts[r] == 0:
                continue
            d_fg = np.linalg.norm(fg_cols - means[r], axis=1).min()
            d_bg = np.percentile(np.linalg.norm(out_cols - means[r], axis=1), 5)
            flip[r] = d_bg < self.enclosed_ratio * d_fg
        return mask & ~flip[region]

    def _prediction(self, mask: np.ndarray) -> Prediction:
        logits = np.where(mask, 1.0, -1.0).astype(np.float32)
        if not mask.any() or mask.all():
            return Prediction(mask, 0.0, logits)
        g = self._grid
        # colour steps across the boundary: horizontal and vertical pixel pairs with different labels
        steps = np.concatenate([g[::2, 1::2][mask[:, 1:] != mask[:, :-1]], g[1::2, ::2][mask[1:] != mask[:-1]]])
        score = float(1.0 - np.exp(-steps.mean() / 20.0))
        return Prediction(mask, score, logits)
