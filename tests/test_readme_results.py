"""README.md's results section: the committed text equals a render of the copy its marker names, and the
renderer's cells on hand-built runs (expected values worked out by hand from the rules in
``seglib.runs.readme``)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from seglib.__main__ import main
from seglib.runs import readme as rd
from seglib.runs import readme_export as ex
from seglib.system import RunError

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PUBLISHED_ANCHOR = "#published-figures-full-scale-never-compared-number-for-number-with-our-cpu-runs"


# --------------------------------------------------------------------------- the committed README


def test_committed_section_equals_a_render_of_its_copy():
    m = rd.find_section(README.read_text())
    assert m["folder"].startswith("docs/results/"), m["folder"]
    assert rd.check_readme(README) == "", "README.md's results section is stale: run `python -m seglib report`"


def test_committed_section_links_resolve():
    body = rd.find_section(README.read_text())["body"]
    headings = [ln for ln in (REPO / rd.METHODS_PAGE).read_text().splitlines() if ln.startswith("#")]
    anchors = {ex.github_anchor(h) for h in headings}
    links = re.findall(r"\]\(([^)\s]+)\)", body)
    assert links
    for link in links:
        path, _, anchor = link.partition("#")
        assert (REPO / path).exists(), f"README results section links to a missing {path}"
        if anchor:
            assert "#" + anchor in anchors, f"{link}: no such heading in {path}"


def test_check_command_passes_on_the_committed_readme(capsys):
    assert main(["report", "--check"]) == 0


# --------------------------------------------------------------------------- cells, by hand


@pytest.mark.parametrize("delta, ci, cell", [
    (2.5, [-0.3, 5.1], "+2.5 [-0.3, +5.1], noise"),
    (2.5, [0.4, 5.1], "+2.5 [+0.4, +5.1]"),
    (3.6, [0.0, 7.8], "+3.6 [+0.0, +7.8], noise"),  # an end at 0 is inside the interval
    (-1.0, [-2.0, -0.1], "-1.0 [-2.0, -0.1]"),
    (-1.0, [-2.0, 0.0], "-1.0 [-2.0, +0.0], noise"),
    (1.5, None, "+1.5 (no interval)"),
])
def test_delta_cell(delta, ci, cell):
    assert rd.delta_cell({"delta_giou": delta, "ci95_giou": ci}) == cell


def test_not_measured_shows_its_reason():
    row = {"delta_giou": None, "ci95_giou": None, "measured": "not measured: the run lacks a | b <x>"}
    assert rd.delta_cell(row) == "not measured: the run lacks a \\| b &lt;x&gt;"


@pytest.mark.parametrize("seconds, text", [(58.34, "58.3 s"), (60.0, "1 min 0.0 s"), (855.0, "14 min 15.0 s")])
def test_duration(seconds, text):
    assert rd.duration(seconds) == text


def test_github_anchor_of_the_published_figures_heading():
    heading = "## Published figures (full scale; never compared number for number with our CPU runs)"
    assert ex.github_anchor(heading) == PUBLISHED_ANCHOR
    assert ex.methods_anchor(REPO) == PUBLISHED_ANCHOR


# --------------------------------------------------------------------------- a hand-built copy


def entry(paradigm, stage, strategy, splits):
    """A metrics.json entry: ``splits`` = {split: (giou, ciou, n, parse_rate, {kind: giou})}."""
    return {"checkpoint": f"{stage}-{paradigm}", "stage": stage, "paradigm": paradigm, "strategy": strategy,
            "file": f"predictions/{stage}-{paradigm}-{strategy}.jsonl", "n": 10, "parse_rate": 1.0,
            "overall": {"giou": 0.0, "ciou": 0.0, "n": 10},
            "splits": {sp: {"giou": g, "ciou": c, "n": n, "parse_rate": pr,
                            "kinds": {k: {"giou": v, "ciou": v, "n": 1} for k, v in kinds.items()}}
                       for sp, (g, c, n, pr, kinds) in splits.items()},
            "vote_curve": {}, "search": {}}


CLAIMS = [
    {"paper": "P", "claim": "x beats y", "published": "published: +8.5 gIoU", "split": "test", "n": 10,
     "delta_giou": 2.5, "delta_ciou": 1.0, "ci95_giou": [-0.3, 5.1], "measured": "...",
     "verdict": "same direction, within noise (95% CI includes 0)"},
    {"paper": "Q", "claim": "z beats y", "published": "published: +1.0", "split": "test", "n": 10,
     "a": "sft-pa-greedy", "b": "grpo-pa-greedy", "seed": 1, "kinds": ["multi"],
     "delta_giou": 2.5, "delta_ciou": 1.0, "ci95_giou": [0.4, 5.1], "measured": "...",
     "verdict": "reproduced: same direction (95% CI above 0)"},
    {"paper": "R", "claim": "w beats y", "published": "published: [x]", "split": None, "n": 0,
     "delta_giou": None, "delta_ciou": None, "ci95_giou": None, "measured": "not measured: the run lacks w",
     "verdict": "not measured"},
]
METRICS = {
    "schema_version": 1, "claims": CLAIMS, "comparisons": [{"name": "unused"}],
    "predictions": {
        "sft-pa-greedy": entry("pa", "sft", "greedy", {"test": (0.40, 0.50, 10, 0.9, {"referring": 0.40})}),
        "grpo-pa-greedy": entry("pa", "grpo", "greedy", {"test": (0.45, 0.30, 10, 0.9, {"referring": 0.45,
                                                                                        "multi": 0.2})}),
        "sft-pb-greedy": entry("pb", "sft", "greedy", {"test": (0.30, 0.30, 8, 1.0, {})}),
        "sft-pb-vote": entry("pb", "sft", "vote", {"test": (0.30, 0.40, 8, 0.5, {})}),
        "sft-pc-greedy": entry("pc", "sft", "greedy", {"val": (0.90, 0.90, 4, 1.0, {})}),
    },
}
RUN = {"params_file": "params/x.yaml", "git": {"commit": "a" * 40, "dirty": False},
       "machine": {"cpus": 2, "cuda": False, "platform": "Linux-x", "python": "3.11.7"},
       "notebooks": {"02_b": {"status": "done", "seconds": 5.0, "peak_rss_mb": 250.4},
                     "01_a": {"status": "done", "seconds": 6.1, "peak_rss_mb": 100.0},
                     "03_c": {"status": "done", "seconds": 10.9, "peak_rss_mb": 250.4},
                     "04_d": {"status": "failed", "error": "E: x"}}}
SECTION = {"run": "tiny", "command": "python -m seglib run params/x.yaml --name tiny", "command_note": "",
           "methods_anchor": "#pub", "tokens_per_answer": {"grpo-pa-greedy": {"test": 12.5, "val": 99.0},
                                                           "sft-pb-vote": {"test": 40.0}}}


def write_copy(folder: Path, figures=("07_iou_vs_n.png",)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, obj in (("metrics.json", METRICS), ("run.json", RUN), ("section.json", SECTION)):
        (folder / name).write_text(json.dumps(obj))
    for f in figures:
        (folder / f).write_bytes(b"png")
    return folder


def test_render_on_a_hand_built_copy(tmp_path):
    text = rd.render_section(write_copy(tmp_path / "r"), "docs/results/r")
    lines = text.splitlines()
    assert "| P | x beats y | [+8.5 gIoU](docs/METHODS.md#pub) | — | +2.5 [-0.3, +5.1], noise | 10 | test | " \
           "same direction, within noise (95% CI includes 0) |" in lines
    assert "| Q | z beats y | [+1.0](docs/METHODS.md#pub) | `sft-pa-greedy` → `grpo-pa-greedy` | +2.5 [+0.4, +5.1] | " \
           "10 | test, multi only, seed 1 | reproduced: same direction (95% CI above 0) |" in lines
    assert "| R | w beats y | [\\[x\\]](docs/METHODS.md#pub) | — | not measured: the run lacks w | 0 | — | " \
           "not measured |" in lines
    # test is common to pa and pb (2 paradigms), val only to pc: the table is on test
    assert "**Best of each paradigm** on `test`" in text
    assert "| pa | `grpo-pa-greedy` | 10 | 45.0 | 30.0 | 90% | 12.5 |" in lines  # higher gIoU wins
    assert "| pb | `sft-pb-vote` | 8 | 30.0 | 40.0 | 50% | 40.0 |" in lines  # gIoU tie: higher cIoU
    assert "| pc | none on test | 0 | — | — | — | — |" in lines
    assert [ln.split(" | ")[0] for ln in lines if re.match(r"\| p[abc] ", ln)] == ["| pa", "| pb", "| pc"]
    assert ("- **Wall time:** 22.0 s (01 6.1 s, 02 5.0 s, 03 10.9 s); not finished: 04_d (failed); "
            "peak RSS 250 MiB") in lines
    assert f"- **Commit:** `{'a' * 40}` (work tree clean)" in lines
    assert "- **Command:** `python -m seglib run params/x.yaml --name tiny`" in lines
    assert lines[0].startswith("*Written by `python -m seglib report outputs/tiny --name r` from")
    assert "![IoU vs voting N](docs/results/r/07_iou_vs_n.png)" in lines
    assert "07_iou_vs_clicks" not in text and rd.SFT_VS_RL not in text  # absent figures: no link
    assert text == rd.render_section(tmp_path / "r", "docs/results/r")  # deterministic


def test_render_without_figures_and_with_a_missing_file(tmp_path):
    text = rd.render_section(write_copy(tmp_path / "r", figures=()), "docs/results/r")
    assert "(this run drew none of the section's figures)" in text and "![" not in text
    (tmp_path / "r" / "section.json").unlink()
    with pytest.raises(rd.ReadmeError, match="section.json is missing"):
        rd.render_section(tmp_path / "r", "docs/results/r")


def test_a_misshapen_copy_is_named(tmp_path):
    folder = write_copy(tmp_path / "r")
    bad = dict(METRICS, predictions={"sft-pa-greedy": {"paradigm": "pa"}})  # no "splits"
    (folder / "metrics.json").write_text(json.dumps(bad))
    with pytest.raises(rd.ReadmeError, match=r"r: metrics.json, run.json or section.json .*'splits'"):
        rd.render_section(folder, "docs/results/r")


def test_write_check_and_the_command(tmp_path, capsys):
    write_copy(tmp_path / "docs" / "results" / "r")
    readme = tmp_path / "README.md"
    readme.write_text("# T\n\nbefore\n\n<!-- results: docs/results/r -->\nold figures 1.23\n"
                      "<!-- /results -->\n\nafter\n")
    assert rd.check_readme(readme) != ""
    assert main(["report", "--check", "--readme", str(readme)]) == 1
    assert main(["report", "--readme", str(readme)]) == 0  # re-render from the copy the marker names
    text = readme.read_text()
    assert text.startswith("# T\n\nbefore\n\n<!-- results: docs/results/r -->\n*Written by")
    assert text.endswith("<!-- /results -->\n\nafter\n") and "1.23" not in text
    assert main(["report", "--check", "--readme", str(readme)]) == 0
    readme.write_text(text.replace("45.0", "46.0"))
    assert main(["report", "--check", "--readme", str(readme)]) == 1
    assert "-| pa | `grpo-pa-greedy` | 10 | 46.0" in capsys.readouterr().out
    readme.write_text("# no markers\n")
    assert main(["report", "--check", "--readme", str(readme)]) == 2
    assert "no results markers" in capsys.readouterr().err


# --------------------------------------------------------------------------- the copy from a run folder


def record(split, texts, paradigm="pa", checkpoint="sft-pa"):
    return {"schema": 1, "sample_id": f"{split}-{len(texts)}-{texts[:1]}", "split": split, "kind": "referring",
            "paradigm": paradigm, "checkpoint": checkpoint, "strategy": "greedy", "height": 2, "width": 2,
            "gt_rle": {"size": [2, 2], "counts": "4"}, "gt_boxes": [], "texts": texts, "answers": [None] * len(texts),
            "parsed": False, "mask_rle": None, "object_rles": [], "boxes": []}


def tiny_tokenizer(path: Path) -> None:
    """Whitespace words; padding on as a saved tokenizer has it (a batch must not count the pads)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"a": 0, "b": 1, "[UNK]": 2, "[PAD]": 3}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.enable_padding(pad_id=3, pad_token="[PAD]", length=16)
    path.mkdir(parents=True, exist_ok=True)
    tok.save(str(path / "tokenizer.json"))


def fake_run(root: Path, record_overrides=True) -> Path:
    run = root / "outputs" / "tiny"
    (run / "figures").mkdir(parents=True)
    (run / "predictions").mkdir()
    (run / "metrics.json").write_text(json.dumps(METRICS))
    params = {"seed": 3, "paradigms": ["a", "b"]}
    rec = dict(RUN, params=params, params_file=str(REPO / "params" / "smoke.yaml"))
    if record_overrides:
        rec["overrides"] = ["seed=3", "paradigms=[a, b]"]
    (run / "run.json").write_text(json.dumps(rec))
    (run / "params.yaml").write_text(yaml.safe_dump(params))
    (run / "figures" / "07_iou_vs_n.png").write_bytes(b"png")
    lines = [record("test", ["a b a"]), record("test", ["b"]), record("val", ["a a a a"]), record("test", [])]
    (run / "predictions" / "sft-pa-greedy.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    tiny_tokenizer(run / "checkpoints" / "sft-pa")
    return run


def test_export_copies_what_the_section_needs(tmp_path):
    run = fake_run(tmp_path)
    dest = ex.export_run(run, tmp_path / "docs" / "results", name="smoke", repo_root=REPO)
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        ["07_iou_vs_n.png", "metrics.json", "params.yaml", "run.json", "section.json", rd.SFT_VS_RL])
    assert json.loads((dest / "metrics.json").read_text()) == METRICS  # small: copied whole
    section = json.loads((dest / "section.json").read_text())
    # test: "a b a" 3 tokens, "b" 1 (the empty record adds no text) -> 2.0; val: "a a a a" -> 4.0; no padding
    assert section["tokens_per_answer"]["sft-pa-greedy"] == {"test": 2.0, "val": 4.0}
    assert section["tokens_per_answer"]["grpo-pa-greedy"] == {}  # no prediction file
    assert section["command"] == (".venv/bin/python -m seglib run params/smoke.yaml -p seed=3 "
                                  "-p 'paradigms=[a, b]' --name tiny")
    assert section["command_note"] == "" and section["methods_anchor"] == PUBLISHED_ANCHOR
    (tmp_path / "docs" / "results" / "smoke" / "stale.png").write_bytes(b"x")
    ex.export_run(run, tmp_path / "docs" / "results", name="smoke", repo_root=REPO)
    assert not (dest / "stale.png").exists()  # written afresh


def test_export_trims_a_large_metrics_file(tmp_path, monkeypatch):
    monkeypatch.setattr(ex, "WHOLE_METRICS_BYTES", 10)
    dest = ex.export_run(fake_run(tmp_path), tmp_path / "res", repo_root=REPO)
    trimmed = json.loads((dest / "metrics.json").read_text())
    assert "comparisons" not in trimmed and trimmed["claims"] == CLAIMS
    assert set(trimmed["predictions"]["sft-pa-greedy"]) == set(ex.ENTRY_KEYS)
    assert rd.render_section(dest, "x") == rd.render_section(dest, "x")


def test_overrides_rebuilt_when_run_json_lists_none(tmp_path):
    from seglib.config import load_params

    params = load_params(REPO / "params" / "smoke.yaml", [], check_choices=False)
    rec = {"params_file": "params/smoke.yaml", "params": dict(params, seed=7, max_clicks=3)}
    command, note = ex.run_command(rec, "r7", REPO)
    assert command == ".venv/bin/python -m seglib run params/smoke.yaml -p max_clicks=3 -p seed=7 --name r7"
    assert note.startswith("run.json lists no overrides")
    rec["params"] = params
    assert ex.run_command(rec, "r", REPO) == (".venv/bin/python -m seglib run params/smoke.yaml --name r",
                                              "run.json lists no overrides; its parameters equal the file's")


def test_stage_kind_bars():
    bars = ex.stage_kind_bars(METRICS["predictions"], "test")
    # only pa has both an sft and a grpo greedy entry; kinds are the union, a missing side is None
    assert bars == {"pa / multi": (None, 0.2), "pa / referring": (0.40, 0.45)}


BENCH = {"command": "python -m bench --out b.json", "sizes": "quick", "cpus": 2, "load_average": 0.4,
         "rows": [{"benchmark": "voting", "figure": "vectorised / loop", "measured": "20.1x pairwise IoU",
                   "goal": ">= 10x", "verdict": "met", "seconds": 3.0},
                  {"benchmark": "demo_latency", "figure": "classic click->view", "measured": "a | b",
                   "goal": "—", "verdict": "report"}]}


def test_bench_lines_become_a_table_of_the_section(tmp_path, capsys):
    run = fake_run(tmp_path)
    bench = tmp_path / "b.json"
    bench.write_text(json.dumps(BENCH))
    dest = ex.export_run(run, tmp_path / "docs" / "results", name="r", repo_root=REPO, bench=bench)
    assert json.loads((dest / rd.BENCH_FILE).read_text()) == BENCH
    lines = rd.render_section(dest, "docs/results/r").splitlines()
    assert "| voting | vectorised / loop | 20.1x pairwise IoU | &gt;= 10x | met |" in lines
    assert "| demo_latency | classic click-&gt;view | a \\| b | — | report |" in lines  # a pipe cannot break the row
    assert any(ln.startswith("**Benchmarks**, from `python -m bench --out b.json` (quick sizes, 2 CPUs")
               for ln in lines)
    # without bench.json the section has no benchmark table
    (dest / rd.BENCH_FILE).unlink()
    assert "**Benchmarks**" not in rd.render_section(dest, "docs/results/r")
    # a file that is not the bench's output is refused before anything is written, naming it
    bench.write_text(json.dumps({"lines": []}))
    with pytest.raises(RunError, match=r"b.json: not a `python -m bench --out` file"):
        ex.export_run(run, tmp_path / "docs" / "results", name="r2", repo_root=REPO, bench=bench)
    assert not (tmp_path / "docs" / "results" / "r2").exists()
    readme = tmp_path / "README.md"
    readme.write_text("<!-- results: docs/results/r -->\n<!-- /results -->\n")
    assert main(["report", "--bench", str(bench), "--readme", str(readme)]) == 2
    assert "--bench goes with a run folder" in capsys.readouterr().err


def test_prm_calibration_rows_only_for_search_files(tmp_path):
    folder = write_copy(tmp_path / "r")
    assert "**PRM search**" not in rd.render_section(folder, "docs/results/r")  # no entry has a calibration
    metrics = json.loads(json.dumps(METRICS))
    metrics["predictions"]["sft-pc-prm_search_k3"] = dict(
        entry("pc", "sft", "prm_search_k3", {"val": (0.5, 0.5, 4, 1.0, {})}),
        search={"k": 3, "t_max": 7, "mean_steps": 6.25, "calibration": {"mae": 0.1234, "pearson": 0.56789, "n": 25}})
    metrics["predictions"]["sft-pc-prm_search_k1"] = dict(
        entry("pc", "sft", "prm_search_k1", {"val": (0.5, 0.5, 4, 1.0, {})}),
        search={"k": 1, "t_max": 7, "mean_steps": 7.0, "calibration": {"mae": 0.2, "pearson": None, "n": 28}})
    (folder / "metrics.json").write_text(json.dumps(metrics))
    lines = rd.render_section(folder, "docs/results/r").splitlines()
    rows = [ln for ln in lines if ln.startswith("| `sft-pc-prm")]
    # ordered by strategy name; MAE in points; a constant side has no Pearson r
    assert rows == ["| `sft-pc-prm_search_k1` | 1 | 7 | 7.00 | — | 20.0 | 28 |",
                    "| `sft-pc-prm_search_k3` | 3 | 7 | 6.25 | 0.568 | 12.3 | 25 |"]


def test_run_settings_say_what_each_grpo_run_changes():
    params = {"grpo_paradigm_settings": {"polygon": {"gspo": True, "num_iterations": 1}},
              "grpo_variants": [{"name": "seed1", "paradigm": "polygon"},
                                {"name": "lr1e-4", "paradigm": "boxpoints", "learning_rate": 1.0e-4},
                                {"name": "rlonly-seed2", "paradigm": "boxpoints", "start": "base"}]}
    assert ex.run_settings(params, "polygon", "grpo") == "main run (gspo: true, num_iterations: 1)"
    assert ex.run_settings(params, "boxpoints", "grpo") == "main run"
    assert ex.run_settings(params, "boxpoints", "grpo-rlonly") == "main RL-only run, from the base policy"
    assert ex.run_settings(params, "polygon", "grpo-seed1") == "seed: 1"
    assert ex.run_settings(params, "boxpoints", "grpo-lr1e-4") == "learning_rate: 0.0001"
    assert ex.run_settings(params, "boxpoints", "grpo-rlonly-seed2") == "start: base, seed: 2"
    assert "not among the run's grpo_variants ('seed1' of boxpoints)" in ex.run_settings(params, "boxpoints", "grpo-seed1")


def test_grpo_runs_table_of_the_section(tmp_path):
    rows = [{"paradigm": "pa", "stage": "grpo", "file": "grpo-pa-greedy", "settings": "main run",
             "splits": {"test_reasoning": {"n": 3, "giou": 12.34, "vs_sft": {"n": 3, "delta": -1.25, "ci95": [-3.0, 0.5]},
                                           "vs_main": None},
                        "test": {"n": 3, "giou": 20.0, "vs_sft": {"n": 3, "delta": 2.0, "ci95": [0.5, 3.5]},
                                 "vs_main": None}}},
            {"paradigm": "pa", "stage": "grpo-lr", "file": "grpo-pa-lr-greedy", "settings": "learning_rate: 0.0001",
             "splits": {"test": {"n": 3, "giou": 18.0, "vs_sft": None, "vs_main": {"n": 3, "delta": -2.0, "ci95": None}}}}]
    lines = rd.grpo_table(rows)
    # test before test_reasoning (preferred split first), three cells each
    assert lines[2].startswith("| paradigm | GRPO run | what it changes | n | test gIoU | test: Δ vs SFT |")
    assert lines[4] == ("| pa | `grpo-pa-greedy` | main run | 3 | 20.0 | +2.0 [+0.5, +3.5] | — | 12.3 | "
                        "-1.2 [-3.0, +0.5], noise | — |")
    assert lines[5] == "| pa | `grpo-pa-lr-greedy` | learning_rate: 0.0001 | 3 | 18.0 | — | -2.0 (no interval) | — | — | — |"
    assert rd.grpo_table([]) == []
    folder = write_copy(tmp_path / "copy")
    section = json.loads((folder / "section.json").read_text())
    (folder / "section.json").write_text(json.dumps(dict(section, grpo_runs=rows)))
    assert "| pa | `grpo-pa-lr-greedy` |" in rd.render_section(folder, "x")


def test_empty_answer_floor():
    import numpy as np

    from seglib.evaluation.comparisons import empty_answer
    from seglib.masks import encode_rle

    def gt_rec(sid, split, pixels):
        m = np.zeros((4, 5), bool)
        m.flat[:pixels] = True
        return {"sample_id": sid, "split": split, "gt_rle": encode_rle(m)}

    # test: one empty target of four → gIoU 25 (IoU 1, 0, 0, 0); cIoU 0 / (3 + 5 + 20) = 0
    recs = [gt_rec("a", "test", 0), gt_rec("b", "test", 3), gt_rec("c", "test", 5), gt_rec("d", "test", 20),
            gt_rec("e", "val", 0)]
    assert empty_answer(recs, "test") == {"n": 4, "giou": pytest.approx(25.0), "ciou": 0.0}
    assert empty_answer(recs, "val") == {"n": 1, "giou": pytest.approx(100.0), "ciou": 0.0}
    assert empty_answer(recs, "train") == {"n": 0, "giou": None, "ciou": None}
    line, _ = rd.empty_answer_lines({"file": "sft-pa-greedy", "splits": {"test": empty_answer(recs, "test"),
                                                                        "val": empty_answer(recs, "val"),
                                                                        "train": empty_answer(recs, "train")}})
    assert line == ("The floor: an empty mask for every query scores gIoU 25.0 / cIoU 0.0 on `test` (n 4), gIoU 100.0 / "
                    "cIoU 0.0 on `val` (n 1), on the samples of `sft-pa-greedy`; a query whose target is empty scores "
                    "IoU 1 with an empty answer and every other query 0.")
    assert rd.empty_answer_lines(None) == [] and rd.empty_answer_lines({"splits": {"t": {"giou": None}}}) == []
