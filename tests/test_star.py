"""StaR+ (seglib.train.star): a hand-made rollout where actions that do not raise IoU are replaced by F_sim's."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from seglib.clicker import Click, next_click
from seglib.masks import mask_iou
from seglib.paradigms import clicks as clicks_paradigm
from seglib.paradigms import get
from seglib.segmenters import Prediction
from seglib.train.star import mean_curve, refine_step, refined_examples, replacement_shares, rollout

CLICKS = get("clicks")

H, W = 40, 40


class DiskSegmenter:
    """A transparent segmenter: union of radius-6 disks at positive clicks minus radius-3 disks at negatives."""

    def __init__(self):
        self.calls = 0

    def set_image(self, image):
        return False

    def predict(self, points_xy, labels, box_xyxy=None, mask_logits=None):
        self.calls += 1
        yy, xx = np.mgrid[:H, :W]
        mask = np.zeros((H, W), bool)
        for (x, y), lab in zip(points_xy, labels):
            if lab == 1:
                mask |= (xx - x) ** 2 + (yy - y) ** 2 <= 36
        for (x, y), lab in zip(points_xy, labels):
            if lab == 0:
                mask &= ~((xx - x) ** 2 + (yy - y) ** 2 <= 9)
        return Prediction(mask=mask, score=1.0, logits=mask.astype(np.float32))


@dataclass
class FakeSample:
    sample_id: str
    gt: np.ndarray
    query: str = "the square"
    height: int = H
    width: int = W

    def union_mask(self):
        return self.gt

    def image(self):
        return np.zeros((H, W, 3), np.uint8)


def square_gt():
    gt = np.zeros((H, W), bool)
    gt[10:30, 10:30] = True
    return gt


def text_for(x, y, positive=True):
    return clicks_paradigm.target_text(Click(x, y, positive), W, H)


def pixel(text):
    return clicks_paradigm.to_click(clicks_paradigm.parse(text), H, W)


def as_generate(propose):
    """A proposer (images, prompts) → one text each, as a ``GenerateFn``."""
    return lambda images, prompts, n=1, do_sample=False: [[t] for t in propose(images, prompts)]


def start(gt):
    return CLICKS.start(FakeSample("a", gt))


def test_action_that_lowers_iou_is_replaced_by_fsim():
    gt, seg = square_gt(), DiskSegmenter()
    # step 1: a positive click in the object raises IoU from 0 -> kept
    t1 = text_for(20, 20)
    s1, state1 = refine_step(CLICKS, start(gt), t1, seg)
    c1 = pixel(t1)
    assert not s1.replaced and s1.click == [c1.x, c1.y, True]
    assert s1.iou_after == pytest.approx(mask_iou(DiskSegmenter().predict([(c1.x, c1.y)], [1]).mask, gt))
    # step 2: a positive click far in the background adds only false positives -> lower IoU -> replaced
    t2 = text_for(36, 36)
    s2, state2 = refine_step(CLICKS, state1, t2, seg)
    assert s2.iou_policy < s2.iou_before and s2.replaced
    expected = next_click(gt, state1.mask, clicked=state1.clicks)  # F_sim's action for the same state, derived independently
    assert s2.click == [expected.x, expected.y, expected.positive]
    assert list(state2.clicks) == [c1, expected]  # the rollout continues from the corrected state
    fixed = DiskSegmenter().predict([(c.x, c.y) for c in state2.clicks], [c.label for c in state2.clicks]).mask
    assert np.array_equal(state2.mask, fixed) and s2.iou_after == pytest.approx(mask_iou(fixed, gt))
    assert s2.iou_after > s2.iou_before


def test_zero_change_and_unparsable_are_replaced():
    gt, seg = square_gt(), DiskSegmenter()
    t1 = text_for(20, 20)
    _, state = refine_step(CLICKS, start(gt), t1, seg)
    same, _ = refine_step(CLICKS, state, t1, seg)  # the same click again: ΔIoU = 0
    assert same.iou_policy == pytest.approx(same.iou_before) and same.replaced
    junk, _ = refine_step(CLICKS, state, "I think it is there", seg)
    assert junk.policy_click is None and junk.replaced and junk.iou_after > junk.iou_before
    # a plain rollout (correct=False) keeps the harmful action
    bad, _ = refine_step(CLICKS, state, text_for(36, 36), seg, correct=False)
    assert not bad.replaced and bad.iou_after == pytest.approx(bad.iou_policy) and bad.iou_after < bad.iou_before


def test_rollout_shares_and_curves():
    gt = square_gt()
    samples = [FakeSample("a", gt), FakeSample("empty", np.zeros((H, W), bool))]
    script = iter([[text_for(20, 20)], [text_for(36, 36)], [text_for(20, 20)]])
    outs = rollout(CLICKS, samples, as_generate(lambda images, prompts: next(script)), DiskSegmenter(), max_clicks=3,
                   tau_stop=0.99, show_progress=False)
    assert [r.sample_id for r in outs] == ["a"]  # the empty target has no click to make
    r = outs[0]
    assert [st.replaced for st in r.steps] == [False, True, True]
    n, replaced, unparsable = replacement_shares(outs)
    assert (n, replaced, unparsable) == (3, 2, 0)
    assert r.ious[0] == 0.0 and len(r.ious) == 4 and r.ious == [0.0] + [st.iou_after for st in r.steps]
    assert mean_curve(outs) == pytest.approx(r.ious)
    ex = refined_examples(CLICKS, outs, {"a": samples[0]})
    assert len(ex) == 3 and ex[1]["target"].startswith(("Positive point", "Negative point"))
    assert ex[1]["target"] == clicks_paradigm.target_text(Click(*r.steps[1].click), W, H)


def test_rollout_and_refined_examples_use_the_policy_prompt_template_and_snap():
    """S_0 trained on the compact prompt and snapped targets: StaR+ must ask and retrain in that same form."""
    gt = square_gt()
    sample = FakeSample("a", gt)
    seen = []

    def propose(images, prompts):
        seen.extend(prompts)
        return [text_for(20, 20)] * len(prompts)

    compact = get("clicks", prompt_template="compact", snap=4)
    outs = rollout(compact, [sample], as_generate(propose), DiskSegmenter(), max_clicks=1, show_progress=False)
    assert seen == [clicks_paradigm.prompt(sample, template="compact")] and seen[0] != clicks_paradigm.prompt(sample)
    ex = refined_examples(compact, outs, {"a": sample})
    click = Click(*outs[0].steps[0].click)
    assert ex[0]["prompt"] == clicks_paradigm.prompt(sample, template="compact")
    assert ex[0]["target"] == clicks_paradigm.target_text(click, W, H, snap=4)


# ----------------------------------------------------------------------------- rounds from a LoRA S_0
def _lora_run_folder(tmp_path):
    """A run folder with SynthRef data, F_sim trajectories and a LoRA clicks S_0 (adapter files only)."""
    import torch

    from seglib.data import load_samples, synthref
    from seglib.models import build_tiny_policy, load_policy
    from seglib.segmenters import build_segmenter
    from seglib.inference import save_task
    from seglib.trajectories import simulate_split

    run = tmp_path / "run"
    synthref.generate(run / "data", n_images=4, seed=0, image_size=56)
    train = load_samples(run / "data", split="train")
    seg = build_segmenter("classic")
    simulate_split(train, seg, run / "trajectories" / "train.jsonl", max_clicks=2, progress=False)
    tiny = {"vision_hidden": 32, "vision_layers": 1, "vision_heads": 2, "text_hidden": 32, "text_layers": 1,
            "text_heads": 2, "vocab_size": 300, "image_size": 56, "patch_size": 14}
    base = build_tiny_policy(tiny, ["Positive point: (412, 377)", "Negative point: (88, 901)",
                                    clicks_paradigm.prompt(train[0])] * 4, tmp_path / "base")
    s0 = run / "checkpoints" / "sft-clicks"
    model, processor = load_policy(base, lora={"r": 4, "lora_alpha": 4})
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.05)
    model.save_pretrained(s0)
    processor.save_pretrained(s0)
    save_task(s0, get("clicks", prm=False))
    return run, seg


@pytest.mark.parametrize("adapter", ["merge", "trainable"])
def test_star_round_from_lora_s0_trains_and_is_not_redone(tmp_path, adapter, monkeypatch):
    import torch

    from seglib.models import load_policy
    from seglib.train import sft as sft_module
    from seglib.train.sft import SFTSettings
    from seglib.train.star import run_star

    run, seg = _lora_run_folder(tmp_path)
    settings = SFTSettings(max_steps=1, learning_rate=1e-2, batch_size=2, warmup_ratio=0.0, save_steps=10,
                           eval_steps=10, logging_steps=1)
    run_star(run, seg, rounds=1, max_samples=2, max_clicks=2, sft_settings=settings, max_new_tokens=6,
             adapter=adapter)
    rdir = run / "checkpoints" / "star-clicks" / "round-1"
    # the round's policy: full weights after an fp32 merge ("merge"), the S_0 adapter trained on ("trainable")
    assert (rdir / ("config.json" if adapter == "merge" else "adapter_config.json")).exists()
    s0, _ = load_policy(run / "checkpoints" / "sft-clicks", adapter="merge")
    s1, _ = load_policy(rdir, adapter="merge")
    a, b = s0.state_dict(), s1.state_dict()
    lm = [k for k in a if "language_model" in k and k.endswith("q_proj.weight")]
    # one SGD-like Adam step at lr 1e-2 moves every q_proj element (S_1 equalled S_0 byte for byte when frozen)
    assert lm and all(float((a[k] != b[k]).float().mean()) > 0.9 for k in lm)
    # resume after the round finished (star_done.json gone, e.g. killed before the stage folder was written):
    # the round is taken as done, whichever files its policy has
    (run / "checkpoints" / "star-clicks" / "star_done.json").unlink()
    calls = []
    monkeypatch.setattr(sft_module, "train_sft", lambda *a, **k: calls.append(1))
    out = run_star(run, seg, rounds=1, max_samples=2, max_clicks=2, sft_settings=settings, max_new_tokens=6,
                   adapter=adapter)
    assert calls == [] and len(out["rounds"]) == 1
    assert torch.equal(load_policy(rdir, adapter="merge")[0].state_dict()[lm[0]], b[lm[0]])
