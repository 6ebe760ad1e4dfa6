"""Figures: what the notebooks draw, one module per step of the method.

========================= ==================================================================
``seglib.viz.core``        overlays (masks, inclusive boxes, points, polygons, clicks), outlines,
                           distinct colours and line styles, legends outside the data, ``save_figure``
``seglib.viz.trajectories`` notebook 02: click trajectories, IoU versus clicks per group, stop reasons
``seglib.viz.sft``         notebook 03: SFT curves, sample picking, before / after SFT
``seglib.viz.training``    notebook 04: GRPO training curves, before / after RL
``seglib.viz.star``        notebook 05: StaR+ rounds, IoU versus clicks per policy, refined rollouts
``seglib.viz.evaluation``  notebooks 06 and 07: vote / search galleries, the evaluation figures
========================= ==================================================================

Figures take data (records, logs, ``metrics.json`` parts) and return a
``matplotlib`` figure; nothing here trains, predicts or scores. At import this
package uses only the lower layers (masks; nothing of inference, evaluation or train).
"""
from seglib.viz.core import (  # noqa: F401  (re-exported)
    LINESTYLES,
    MARKERS,
    NEGATIVE,
    PALETTE,
    POSITIVE,
    click_markers,
    distinct_colors,
    gallery,
    legend_outside,
    line_styles,
    no_data,
    outline,
    save_figure,
    short_text,
    show_sample,
)
from seglib.viz.evaluation import CLUSTER_COLOURS, hardest, plot_search_strip, plot_vote_gallery  # noqa: F401
from seglib.viz.sft import before_after_figure, plot_sft_curves, spread_samples  # noqa: F401
from seglib.viz.star import plot_iou_vs_clicks, plot_refined_example, plot_rounds  # noqa: F401
from seglib.viz.training import before_after_gallery, plot_training  # noqa: F401
from seglib.viz.trajectories import plot_iou_vs_clicks_by_group, plot_stop_reasons, trajectory_strip  # noqa: F401
