"""Notebook 04's extra GRPO runs (``grpo_variants``), its per-paradigm settings, and the single-object reward.

Every expected value is worked out by hand from the rules in the docstrings.
"""
import json
from pathlib import Path

import pytest

from seglib.paradigms.boxpoints.visionreasoner import visionreasoner_score
from seglib.train.rl_stage import grpo_runs
from seglib.train.settings import grpo_checkpoint_name, grpo_params, grpo_params_for, grpo_variants

ENABLED = ["boxpoints", "polygon"]


def variants(*items, **params):
    return grpo_variants({"seed": 0, "grpo_variants": list(items), **params}, ENABLED)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("items, message", [
    ([{"name": "rlonly", "paradigm": "boxpoints"}], r"grpo_variants\[0\] \('rlonly'\): the name 'rlonly'"),
    ([{"name": "a", "paradigm": "boxpoint"}], r"grpo_variants\[0\] \('a'\): unknown paradigm 'boxpoint'"),
    ([{"name": "a", "paradigm": "clicks"}], r"grpo_variants\[0\] \('a'\): paradigm 'clicks' is not enabled"),
    ([{"name": "a", "paradigm": "boxpoints", "lr": 1e-5}], r"grpo_variants\[0\] \('a'\): unknown key\(s\) \['lr'\]"),
    ([{"name": "a", "paradigm": "boxpoints"}, {"name": "b", "paradigm": "polygon"},
      {"name": "a", "paradigm": "boxpoints"}], r"grpo_variants\[2\] \('a'\): boxpoints already has a variant 'a' "
                                               r"\(grpo_variants\[0\]\)"),
    ([{"paradigm": "boxpoints"}], r"grpo_variants\[0\]: name must be"),
    ([{"name": "Seed 1", "paradigm": "boxpoints"}], r"name must be lower-case"),
    ([{"name": "seed1", "paradigm": "boxpoints", "seed": 2}], r"\('seed1'\): a variant named 'seed1' trains with seed 1"),
    ([{"name": "a", "paradigm": "boxpoints", "start": "base"}], r"\('a'\): a variant from the base policy is named"),
    ([{"name": "rlonly-a", "paradigm": "boxpoints"}], r"\('rlonly-a'\): a variant from the base policy is named"),
    ([{"name": "a", "paradigm": "boxpoints", "start": "scratch"}], r"start must be 'sft' or 'base'"),
    ([{"name": "a", "paradigm": "boxpoints", "rest_keep": 9}], r"\('a'\): rest_keep \(m\) must be in \[2, num_generations=4\]"),
    ([{"name": "a", "paradigm": "boxpoints", "gspo": "yes"}], r"\('a'\): gspo = 'yes' has the wrong type"),
    ([{"name": "a", "paradigm": "boxpoints", "num_generations": 4.5}], r"num_generations = 4.5 has the wrong type"),
    ([{"name": "a", "paradigm": "boxpoints", "rewards": ["simpleseg"]}], r"\('a'\): rewards must be a non-empty list"),
    ([{"name": "a", "paradigm": "boxpoints", "reward_options": [1]}], r"reward_options must be a mapping"),
    (["seed1"], r"grpo_variants\[0\]: expected a mapping"),
])
def test_a_bad_item_is_named_before_anything_trains(items, message):
    with pytest.raises(ValueError, match=message):
        variants(*items)


def test_grpo_variants_must_be_a_list():
    with pytest.raises(ValueError, match="grpo_variants must be a list"):
        grpo_variants({"grpo_variants": {"name": "a"}}, ENABLED)


def test_a_variant_is_its_paradigms_main_run_with_its_changes():
    """Main settings: grpo_* (3 steps, G = 6, seed 0), polygon with GSPO (grpo_paradigm_settings)."""
    params = {"seed": 0, "grpo_steps": 3, "grpo_num_generations": 6, "grpo_rewards": {"boxpoints": ["star"]},
              "grpo_paradigm_settings": {"polygon": {"gspo": True}}}
    seed1, rest, poly, single, rl = variants(
        {"name": "seed1", "paradigm": "boxpoints"},
        {"name": "rest", "paradigm": "boxpoints", "rest_keep": 2, "max_steps": 5},
        {"name": "lr", "paradigm": "polygon", "learning_rate": 2e-5},
        {"name": "single", "paradigm": "boxpoints", "rewards": ["visionreasoner"],
         "reward_options": {"single_object": True}},
        {"name": "rlonly-seed3", "paradigm": "boxpoints", "start": "base"}, **params)
    assert (seed1.checkpoint, seed1.params.seed, seed1.params.max_steps, seed1.params.num_generations) == (
        "grpo-boxpoints-seed1", 1, 3, 6)
    assert seed1.rewards == ("star",)  # the main run's scorers where the item names none
    assert (rest.params.rest_keep, rest.params.max_steps, rest.params.seed) == (2, 5, 0)
    assert poly.params.gspo and poly.params.learning_rate == 2e-5  # polygon's main setting is kept
    assert poly.params.resolved().importance_sampling_level == "sequence"
    assert single.rewards == ("visionreasoner",) and single.reward_options == {"single_object": True}
    assert (rl.checkpoint, rl.start, rl.params.seed) == ("grpo-boxpoints-rlonly-seed3", "base", 3)


def test_grpo_paradigm_settings_by_hand():
    base = grpo_params({"seed": 0})
    assert grpo_params_for(base, "polygon", {"polygon": {"gspo": True}}).gspo
    assert grpo_params_for(base, "boxpoints", {"polygon": {"gspo": True}}) == base
    with pytest.raises(ValueError, match=r"unknown paradigm\(s\) \['polgon'\]"):
        grpo_params_for(base, "boxpoints", {"polgon": {"gspo": True}})
    with pytest.raises(ValueError, match=r"grpo_paradigm_settings\['polygon'\]: unknown GRPOParams field\(s\) \['gpso'\]"):
        grpo_params_for(base, "polygon", {"polygon": {"gpso": True}})


def test_checkpoint_names_and_the_order_of_the_runs():
    assert [grpo_checkpoint_name("polygon", s, v) for s, v in [("sft", None), ("base", None), ("sft", "seed1"),
                                                               ("base", "rlonly-seed1")]] == [
        "grpo-polygon", "grpo-polygon-rlonly", "grpo-polygon-seed1", "grpo-polygon-rlonly-seed1"]
    plan = grpo_runs({"seed": 0, "grpo_rl_from_base": True, "grpo_variants": [{"name": "rest", "paradigm": "boxpoints",
                                                                             "rest_keep": 2}]}, ENABLED)
    assert [r.checkpoint for r in plan] == ["grpo-boxpoints", "grpo-boxpoints-rlonly", "grpo-polygon",
                                            "grpo-polygon-rlonly", "grpo-boxpoints-rest"]


def test_the_command_line_refuses_an_unknown_variant(tmp_path, capsys):
    from seglib.train.__main__ import main

    rc = main(["grpo", "--params", str(Path(__file__).parents[1] / "params" / "smoke.yaml"), "--run-dir", str(tmp_path),
               "--variant", "seed1", "-p", "grpo_variants=[{name: rest, paradigm: boxpoints, rest_keep: 2}]"])
    assert rc == 2 and "--variant 'seed1'" in capsys.readouterr().err
    rc = main(["grpo", "--params", str(Path(__file__).parents[1] / "params" / "smoke.yaml"), "--run-dir", str(tmp_path),
               "--variant", "x", "-p", "grpo_variants=[{name: x, paradigm: boxpoints, bogus: 1}]"])
    assert rc == 2 and "unknown key(s) ['bogus']" in capsys.readouterr().err


# --------------------------------------------------------------------------- notebook 06: variants are greedy only


def test_variants_never_count_as_the_latest_stage():
    from seglib import paradigms
    from seglib.inference import strategies_by_checkpoint

    names = ["sft-boxpoints", "grpo-boxpoints", "grpo-boxpoints-seed1", "grpo-boxpoints-rest", "sft-clicks",
             "grpo-clicks", "grpo-clicks-seed1", "star-clicks", "sft-polygon", "grpo-polygon-rlonly-seed1"]
    tasks = {n: paradigms.get(n.split("-")[1]) for n in names}
    wanted = ["greedy", "vote", "prm_search"]
    plan = strategies_by_checkpoint([Path(n) for n in names], tasks, wanted, "latest")
    latest = {n for n, st in plan.items() if st == wanted}
    assert latest == {"grpo-boxpoints", "star-clicks", "sft-polygon"}
    assert all(plan[n] == ["greedy"] for n in set(names) - latest)


# --------------------------------------------------------------------------- the single-object reward

THINK = "<think>two things.</think>"
# targets A and B in pixels (the model's frame: resize None): boxes inclusive, one point each
GT_BOXES = [[0, 0, 9, 9], [50, 50, 69, 69]]
GT_POINTS = [[5, 5], [60, 60]]


def answer(*objs):
    return THINK + "<answer>" + json.dumps([{"bbox_2d": b, "point_2d": p, "label": "x"} for b, p in objs]) + "</answer>"


def single(text, boxes=GT_BOXES, points=GT_POINTS):
    return visionreasoner_score(text, boxes, points, single_object=True)


def test_single_object_reward_reads_the_first_object_against_its_best_target():
    # first object = B exactly: IoU 1 > .5, L1 0 < 10, point inside and 0 px away → 3; the second object is ignored
    s = single(answer(([50, 50, 69, 69], [60, 60]), ([90, 90, 99, 99], [95, 95])))
    assert s == {"format": 3.0, "accuracy": 3.0, "non_repeat": 1.0}
    # box [0,0,19,19] vs A: IoU 100/400 = .25 (no), L1 (0+0+10+10)/4 = 5 (yes), point (5,5) on A's (yes) → 2;
    # vs B: IoU 0, L1 50, point 77.8 px < 100 (yes) → 1; the best target gives 2
    assert single(answer(([0, 0, 19, 19], [5, 5])))["accuracy"] == 2.0
    # box [0,0,9,13] vs A: IoU 100/140 = .71 (yes), L1 4/4 = 1 (yes), point (40,40) outside its box (no) → 2
    assert single(answer(([0, 0, 9, 13], [40, 40])))["accuracy"] == 2.0
    # a box with x1 < x0 earns no accuracy (its four numbers still count for the format: 1 + 2)
    assert single(answer(([69, 50, 50, 69], [60, 60]))) == {"format": 3.0, "accuracy": 0.0, "non_repeat": 1.0}


def test_single_object_reward_does_not_reward_the_count():
    one = answer(([50, 50, 69, 69], [60, 60]))
    both = answer(([50, 50, 69, 69], [60, 60]), ([0, 0, 9, 9], [5, 5]))
    # VisionReasoner's multi-object accuracy: one of two targets (3 · 1 − 0) / max(1, 2) = 1.5; both: 6 / 2 = 3
    assert visionreasoner_score(one, GT_BOXES, GT_POINTS)["accuracy"] == 1.5
    assert visionreasoner_score(both, GT_BOXES, GT_POINTS)["accuracy"] == 3.0
    assert single(one)["accuracy"] == single(both)["accuracy"] == 3.0


def test_single_object_reward_on_empty_answers_and_targets():
    assert single(THINK + "<answer>[]</answer>") == {"format": 1.0, "accuracy": 0.0, "non_repeat": 1.0}
    assert single(answer(([0, 0, 9, 9], [5, 5])), [], [])["accuracy"] == 0.0  # no target: nothing to match
    assert visionreasoner_score(THINK + "<answer>[]</answer>", [], [])["accuracy"] == 3.0  # multi: M = N = 0
    assert single("no answer here") == {"format": 0.0, "accuracy": 0.0, "non_repeat": 1.0}
    # a first item with a box but no point: the box terms only (A exactly: 2), format 1 + 1
    text = THINK + '<answer>[{"bbox_2d": [0, 0, 9, 9]}]</answer>'
    assert single(text) == {"format": 2.0, "accuracy": 2.0, "non_repeat": 1.0}


def test_the_option_reaches_the_scorer_through_the_paradigm():
    from seglib import paradigms

    p = paradigms.get("boxpoints", {"style": "list"})
    row = {"style": "list", "gt_boxes": json.dumps(GT_BOXES), "gt_points": json.dumps(GT_POINTS),
           "height": 100, "width": 100}
    text = answer(([50, 50, 69, 69], [60, 60]))
    multi, = p.score_group([text], row, rewards=["visionreasoner"])
    one, = p.score_group([text], row, rewards=["visionreasoner"], reward_options={"single_object": True})
    assert (multi["visionreasoner_accuracy"], one["visionreasoner_accuracy"]) == (1.5, 3.0)


def test_rl_from_base_runs_for_the_listed_paradigms_only():
    from seglib.train.settings import rl_from_base_paradigms

    enabled = ["boxpoints", "polygon", "clicks"]
    assert rl_from_base_paradigms({"grpo_rl_from_base": True}, enabled) == enabled
    assert rl_from_base_paradigms({"grpo_rl_from_base": False, "grpo_rl_from_base_paradigms": ["clicks"]}, enabled) == []
    assert rl_from_base_paradigms({}, enabled) == []
    # a list keeps the run's order and leaves out a registered paradigm the run does not enable
    on = {"grpo_rl_from_base": True}
    assert rl_from_base_paradigms({**on, "grpo_rl_from_base_paradigms": ["clicks", "boxpoints", "descriptors"]},
                                  enabled) == ["boxpoints", "clicks"]
    with pytest.raises(ValueError, match=r"unknown paradigm\(s\) \['boxpoint'\]"):
        rl_from_base_paradigms({**on, "grpo_rl_from_base_paradigms": ["boxpoint"]}, enabled)
    with pytest.raises(ValueError, match="a list of paradigm names"):
        rl_from_base_paradigms({**on, "grpo_rl_from_base_paradigms": 3}, enabled)
    plan = grpo_runs({"seed": 0, **on, "grpo_rl_from_base_paradigms": ["polygon"]}, ENABLED)
    assert [r.checkpoint for r in plan] == ["grpo-boxpoints", "grpo-polygon", "grpo-polygon-rlonly"]
