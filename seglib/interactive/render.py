"""Drawing a click session: the state image with mask and markers, the IoU-versus-clicks curve, a static figure.

The mask is drawn as SAM2's example notebooks draw masks: a translucent
dodger-blue fill (α = 0.6) with a crisp contour, so it shows on objects of any
colour (the policy itself still sees SegAgent's green state image).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from seglib.clicker import Click
from seglib.interactive.session import AGENT, HUMAN, ClickSession
from seglib.masks import overlay

POSITIVE_RGB = (0, 200, 0)
NEGATIVE_RGB = (230, 0, 0)
SUGGEST_RGB = (255, 215, 0)
MASK_RGB = (30, 144, 255)  # dodger blue, as in SAM2's example notebooks
MASK_ALPHA = 0.6
EDGE_DARK_RGB = (0, 40, 110)  # the contour: white boundary pixels inside a navy band, visible on light and dark
EDGE_LIGHT_RGB = (255, 255, 255)
MARKER_RING_RGB = (255, 255, 255)
MARKER_EDGE_RGB = (0, 0, 0)


def render_state(image: np.ndarray, mask: np.ndarray, clicks: Sequence[Click],
                 suggestion: Click | None = None, scale: int = 1) -> np.ndarray:
    """The image with the mask and click markers drawn on it, upscaled ``scale``×; uint8 RGB.

    The mask is a translucent dodger-blue fill, out = round(0.4·image +
    0.6·(30, 144, 255)) on mask pixels (``MASK_RGB``, ``MASK_ALPHA``), plus a
    contour along its boundary drawn at display resolution: the outermost mask
    pixels are white (``EDGE_LIGHT_RGB``), with a navy band (``EDGE_DARK_RGB``)
    2 px wide on either side of them.
    Pixels off the mask and its contour are the image's. Positive clicks are
    filled green discs, negative ones filled red, each with a white ring and a
    thin black edge; the pending suggestion is a hollow yellow ring. Pixel
    (x, y) of the image covers [x*scale, (x+1)*scale) of the result.
    """
    import cv2

    mask = np.asarray(mask, dtype=bool)
    canvas = overlay(image, mask, color=MASK_RGB, alpha=MASK_ALPHA)
    big_mask = mask
    if scale > 1:
        canvas = np.repeat(np.repeat(canvas, scale, axis=0), scale, axis=1)
        big_mask = np.repeat(np.repeat(mask, scale, axis=0), scale, axis=1)
    canvas = np.ascontiguousarray(canvas)
    if big_mask.any():
        contours, _ = cv2.findContours(big_mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(canvas, contours, -1, EDGE_DARK_RGB, 3, lineType=cv2.LINE_8)
        cv2.drawContours(canvas, contours, -1, EDGE_LIGHT_RGB, 1, lineType=cv2.LINE_8)
    radius = max(4, int(round(0.016 * max(canvas.shape[:2]))))

    def centre(c: Click) -> tuple[int, int]:
        return int(c.x * scale + scale // 2), int(c.y * scale + scale // 2)

    for c in clicks:
        colour = POSITIVE_RGB if c.positive else NEGATIVE_RGB
        cv2.circle(canvas, centre(c), radius + 2, MARKER_EDGE_RGB, -1, lineType=cv2.LINE_AA)
        cv2.circle(canvas, centre(c), radius + 1, MARKER_RING_RGB, -1, lineType=cv2.LINE_AA)
        cv2.circle(canvas, centre(c), radius - 1, colour, -1, lineType=cv2.LINE_AA)
    if suggestion is not None:
        colour = POSITIVE_RGB if suggestion.positive else NEGATIVE_RGB
        cv2.circle(canvas, centre(suggestion), radius + 4, MARKER_EDGE_RGB, 4, lineType=cv2.LINE_AA)
        cv2.circle(canvas, centre(suggestion), radius + 4, SUGGEST_RGB, 2, lineType=cv2.LINE_AA)
        cv2.circle(canvas, centre(suggestion), radius, colour, 1, lineType=cv2.LINE_AA)
    return canvas


def png_bytes(rgb: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def iou_curve_image(history: Sequence[dict], max_clicks: int = 10, size_px: tuple[int, int] = (300, 220)) -> np.ndarray:
    """IoU against click number as an RGB image: a blue line for the human's clicks, orange for the agent's.

    Drawn with OpenCV rather than matplotlib: it is redrawn after every click
    and must cost a millisecond, not a tenth of a second.
    """
    import cv2

    width, height = size_px
    canvas = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 34, 10, 22, 28  # the top margin holds the y-axis label
    x_max = max(max_clicks, len(history))
    sx = (width - left - right) / max(x_max, 1)
    sy = height - top - bottom

    def pt(n: float, iou: float) -> tuple[int, int]:
        return int(round(left + n * sx)), int(round(top + (1.0 - iou) * sy))

    grey, black, font = (220, 220, 220), (60, 60, 60), cv2.FONT_HERSHEY_SIMPLEX
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        cv2.line(canvas, pt(0, v), pt(x_max, v), grey, 1)
        cv2.putText(canvas, f"{v:.2f}"[:4], (2, pt(0, v)[1] + 4), font, 0.3, black, 1, cv2.LINE_AA)
    for n in range(0, x_max + 1, max(1, x_max // 5)):
        cv2.putText(canvas, str(n), (pt(n, 0)[0] - 3, height - bottom + 12), font, 0.3, black, 1, cv2.LINE_AA)
    cv2.rectangle(canvas, pt(0, 1.0), pt(x_max, 0.0), black, 1)
    cv2.putText(canvas, "number of clicks", (width // 2 - 45, height - 4), font, 0.35, black, 1, cv2.LINE_AA)
    cv2.putText(canvas, "IoU", (2, 12), font, 0.35, black, 1, cv2.LINE_AA)  # y-axis label, above the tick column
    for i, (who, colour) in enumerate(((HUMAN, (31, 119, 180)), (AGENT, (255, 127, 14)))):
        pts = [pt(h["n"], min(max(h["iou"], 0.0), 1.0)) for h in history if h["who"] == who and h["iou"] is not None]
        if len(pts) > 1:
            cv2.polylines(canvas, [np.array(pts, np.int32)], False, colour, 2, cv2.LINE_AA)
        for p in pts:
            cv2.circle(canvas, p, 3, colour, -1, cv2.LINE_AA)
        lx, ly = width - right - 70, height - bottom - 30 + 14 * i
        cv2.line(canvas, (lx, ly), (lx + 14, ly), colour, 2)
        cv2.putText(canvas, who, (lx + 18, ly + 4), font, 0.35, black, 1, cv2.LINE_AA)
    return canvas


def readout_text(session: ClickSession) -> str:
    """E.g. ``IoU 0.000 · clicks 0`` (``IoU n/a`` without ground truth)."""
    iou = session.iou
    iou_txt = "n/a" if iou is None else f"{iou:.3f}"
    return f"IoU {iou_txt} · clicks {len(session.steps)}"



def session_figure(session: ClickSession, scale: int = 4, max_clicks: int = 10, title: str | None = None):
    """The session as a static matplotlib figure (for saved notebooks and headless runs).

    Left: ``render_state`` of the current mask, clicks and pending suggestion
    (``scale``× upscaled for crisp markers), with axes in image pixels (x
    right, y down). Right: IoU with the ground truth against click number
    (0 = no clicks, IoU 0), one marker per click coloured by who made it; a
    note instead of the curve when there is no ground truth. Built on
    ``matplotlib.figure.Figure`` (no pyplot, any backend).
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    scale = max(1, int(scale))
    pending = session.pending[0] if session.pending else None
    canvas = render_state(session.image, session.mask, session.clicks, pending, scale)
    fig = Figure(figsize=(10, 4.4), dpi=100)
    ax_img, ax_curve = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 1]})
    ax_img.imshow(canvas, extent=(-0.5, session.width - 0.5, session.height - 0.5, -0.5), interpolation="nearest")
    ax_img.set_xlabel("x (px)")
    ax_img.set_ylabel("y (px)")
    ax_img.set_title(title if title is not None else f"“{session.query}”", fontsize=10)
    ax_img.legend(handles=[
        Line2D([], [], marker="s", ls="", color=np.array(MASK_RGB) / 255, alpha=MASK_ALPHA, label="mask"),
        Line2D([], [], marker="o", ls="", color=np.array(POSITIVE_RGB) / 255, mec="white", label="positive click"),
        Line2D([], [], marker="o", ls="", color=np.array(NEGATIVE_RGB) / 255, mec="white", label="negative click"),
    ] + ([Line2D([], [], marker="o", ls="", mfc="none", mec=np.array(SUGGEST_RGB) / 255, mew=2,
                 label="suggested click")] if pending is not None else []),
        loc="upper right", fontsize=7, framealpha=0.85)
    history = session.history
    n_max = max(max_clicks, len(history), 1)
    ax_curve.set_xlim(0, n_max)
    ax_curve.set_ylim(0, 1.02)
    ax_curve.set_xlabel("number of clicks")
    ax_curve.set_ylabel("IoU with the ground truth")
    ax_curve.grid(alpha=0.3)
    if session.gt_mask is None:
        ax_curve.text(0.5, 0.5, "no ground truth: no IoU", ha="center", va="center", transform=ax_curve.transAxes)
    else:
        xs = [0] + [h["n"] for h in history]
        ys = [0.0] + [h["iou"] for h in history]
        ax_curve.plot(xs, ys, color="0.6", lw=1.5, zorder=1)
        for who, colour in ((HUMAN, "#1f77b4"), (AGENT, "#ff7f0e")):
            pts = [(h["n"], h["iou"]) for h in history if h["who"] == who]
            if pts:
                ax_curve.scatter(*zip(*pts), color=colour, s=36, zorder=2, label=f"{who} click")
        if history:
            ax_curve.legend(loc="lower right", fontsize=8)
        ax_curve.set_title(f"IoU {session.iou:.3f} after {len(history)} click(s)", fontsize=10)
    fig.tight_layout()
    return fig


def figure_png(fig, dpi: int = 100) -> bytes:
    """A matplotlib figure as PNG bytes."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()
