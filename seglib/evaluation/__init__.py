"""Evaluation from prediction files only: gIoU/cIoU, paradigm extras, scaling curves, comparisons, claims.

Reads ``<run_dir>/predictions/*.jsonl`` (schema in ``seglib.inference.records``)
and needs no model. ``scoring`` reduces records to I/U and summaries (and asks
each record's paradigm for its ``extra_metrics``), ``curves`` adds the strategy
metrics (voting curve, PRM search), ``entry`` puts both into one file's
metrics.json entry, ``comparisons`` the paired deltas,
``claims`` the papers' claims (each paradigm's ``claims``), and ``report``
writes the whole run. Conventions: ``seglib.evaluation.scoring``.

All IoUs in ``metrics.json`` are fractions in [0, 1]; tables and the claims
show points (× 100).

``metrics.json`` schema (``METRICS_SCHEMA_VERSION`` = 1)
------------------------------------------------------
::

    {
      "schema_version": 1,
      "conventions": {name: sentence, ...},
      "predictions": {
        "<checkpoint>-<strategy>": {
          "checkpoint": str, "stage": "sft"|"grpo"|"star"|"base", "paradigm": str,
          "strategy": str, "file": "predictions/<name>.jsonl", "n": int, "parse_rate": float,
          "overall": {"giou", "ciou", "n"},
          "splits": {split: {"giou", "ciou", "n", "parse_rate",
                             "kinds": {kind: {"giou", "ciou", "n"}}}},
          <extra key of every registered paradigm>: ...,         # its Paradigm.extra_metrics; else {}
              # today  acc_at_05: {split: {"value", "n"}}        (box answers: Acc@0.5)
              #        and the click metrics: {split: {"noc85", "noc90", "n",
              #                                        "iou_vs_clicks": [mIoU after click 1..T]}}
          "vote_curve": {split: {"n": [..], "giou": [..], "ciou": [..]}},   # sample/vote; else {}
          "search": {"k": int, "t_max": int, "mean_steps": float, "mean_best_step": float,
                     "iou_vs_t": {split: {"t": [..], "giou": [..], "ciou": [..]}},
                     "calibration": {"mae", "pearson", "n"}}   # prm_search; else {}
        }, ...
      },
      "comparisons": [{"name", "paradigm", "split", "a", "b", "n", "giou_a", "giou_b",
                       "ciou_a", "ciou_b", "delta_giou", "delta_ciou", "ci95_giou": [lo, hi]}],
      "claims": [{"paper", "claim", "published", "measured", "split", "n",
                  "seed",    # None, or k for the row comparing the seed<k> variants (Claim.per_seed)
                  "kinds",   # None, or the query kinds both sides were restricted to (Claim.kinds)
                  "a", "b",  # the prediction files compared (b − a), None for a side the run lacks
                  "budget",  # None, or {"N": n} / {"T": t}: both sides cut to that budget (Claim.budgets)
                  "delta_giou", "delta_ciou", "ci95_giou", "verdict"}]
    }

``delta_*`` and ``ci95_giou`` are in IoU points (× 100), ``null`` where not
measured (the run lacks a side, or neither side parsed a single answer).
``ci95_giou`` is a paired bootstrap (1000 resamples of the shared samples, seed 0).
"""
from seglib.evaluation.claims import all_claims, claims_table, verdict  # noqa: F401  (re-exported)
from seglib.evaluation.comparisons import comparisons, main_split, paired_delta  # noqa: F401
from seglib.evaluation.curves import (  # noqa: F401
    VOTE_NS,
    best_step_index,
    calibration_pairs,
    search_metrics,
    vote_curve,
)
from seglib.evaluation.report import (  # noqa: F401
    METRICS_SCHEMA_VERSION,
    STAGE_ORDER,
    claims_markdown,
    comparisons_markdown,
    curves_markdown,
    evaluate_run,
    load_run_predictions,
    md_cell,
    results_table,
    write_figures,
    write_tables,
)
from seglib.evaluation.entry import evaluate_records, metrics_by_kind  # noqa: F401
from seglib.evaluation.scoring import (  # noqa: F401
    CONVENTIONS,
    PREFERRED_SPLITS,
    Scored,
    intersection_union,
    score_record,
    stage_of,
)
