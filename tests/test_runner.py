"""The runner's guidance: per-notebook defaults, choices checked up front, Ctrl-C, --rerun, compare summaries."""
from __future__ import annotations

import json
from pathlib import Path

import papermill
import pytest
import yaml

from seglib.config import ParamError, explicit_params, load_params, notebook_injection
from seglib.runs import RunInterrupted, compare_runs, run_notebooks
from test_runs import make_notebook


@pytest.fixture
def two_defaults(tmp_path):
    """Two notebooks that declare the same parameter with different defaults (4 and 8)."""
    d = tmp_path / "notebooks"
    d.mkdir()
    for stem, size in (("01_a", 4), ("02_b", 8)):
        make_notebook(d / f"{stem}.ipynb", f"run_dir = 'x'\nsize = {size}\ndifficulty = 'easy'\n",
                      f"from pathlib import Path\nPath(run_dir, '{stem}.txt').write_text(str(size))")
    return d


@pytest.fixture
def fake_papermill(monkeypatch):
    """Replace notebook execution by writing the output file; returns the list of (notebook stem, parameters)."""
    calls = []

    def execute(src, dst, parameters=None, **kwargs):
        calls.append((Path(src).stem, dict(parameters)))
        Path(dst).write_text("{}")

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    return calls


def test_each_notebook_keeps_its_own_default(two_defaults, tmp_path):
    run_dir = run_notebooks(None, run_name="d", outputs_dir=tmp_path / "o", notebook_dir=two_defaults)
    assert (run_dir / "01_a.txt").read_text() == "4"
    assert (run_dir / "02_b.txt").read_text() == "8"  # not the first notebook's 4


def test_a_set_value_reaches_every_notebook(two_defaults, tmp_path, fake_papermill):
    run_notebooks(None, ["size=16"], run_name="s", outputs_dir=tmp_path / "o", notebook_dir=two_defaults)
    assert [(stem, p["size"]) for stem, p in fake_papermill] == [("01_a", 16), ("02_b", 16)]
    assert "difficulty" not in fake_papermill[0][1]  # unset: each notebook's own default applies


def test_injection_is_only_declared_and_set_values(two_defaults):
    nb = two_defaults / "01_a.ipynb"
    assert notebook_injection(nb, {"size": 2, "other": 1}, "/r") == {"size": 2, "run_dir": "/r"}


def test_bad_choice_is_refused_before_any_folder(two_defaults, tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump({"difficulty": "medum"}))
    with pytest.raises(ParamError) as err:
        run_notebooks(p, run_name="c", outputs_dir=tmp_path / "o", notebook_dir=two_defaults)
    msg = str(err.value)
    assert "'difficulty'" in msg and "did you mean 'medium'?" in msg and "easy, hard, medium" in msg
    assert not (tmp_path / "o").exists()


def test_unknown_key_suggests_the_nearest_and_hides_run_dir(two_defaults):
    with pytest.raises(ParamError) as err:
        load_params(None, ["sise=3"], notebook_dir=two_defaults)
    msg = str(err.value)
    assert "did you mean 'size'?" in msg
    assert "run_dir" not in msg.split("valid keys are:")[1]


def test_explicit_params_holds_only_what_was_set(two_defaults, tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump({"size": 5}))
    assert explicit_params(p, ["difficulty=hard"], notebook_dir=two_defaults) == {"size": 5, "difficulty": "hard"}


def test_ctrl_c_marks_interrupted_and_prints_resume(two_defaults, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", interrupted)
    p = tmp_path / "p.yaml"
    p.write_text("size: 3\n")
    with pytest.raises(RunInterrupted) as err:
        run_notebooks(p, ["difficulty=hard"], run_name="k", outputs_dir=tmp_path / "o", notebook_dir=two_defaults)
    record = json.loads((tmp_path / "o" / "k" / "run.json").read_text())
    assert record["notebooks"]["01_a"]["status"] == "interrupted"
    assert f"-m seglib run {p} -p difficulty=hard --name k --resume" in str(err.value)


def test_rerun_marks_later_notebooks_stale(two_defaults, tmp_path, fake_papermill):
    out = tmp_path / "o"
    run_notebooks(None, run_name="r", outputs_dir=out, notebook_dir=two_defaults)
    fake_papermill.clear()
    run_notebooks(None, run_name="r", outputs_dir=out, notebook_dir=two_defaults, rerun="01")
    assert [stem for stem, _ in fake_papermill] == ["01_a"]
    record = json.loads((out / "r" / "run.json").read_text())
    assert record["notebooks"]["01_a"]["status"] == "done"
    assert record["notebooks"]["02_b"]["status"] == "stale"
    fake_papermill.clear()
    run_notebooks(None, run_name="r", outputs_dir=out, notebook_dir=two_defaults, resume=True)
    assert [stem for stem, _ in fake_papermill] == ["02_b"]  # the stale one runs again, the fresh one does not


def _run_folder(path: Path, params: dict, metrics: dict) -> Path:
    path.mkdir()
    (path / "run.json").write_text(json.dumps({"params": params}))
    (path / "metrics.json").write_text(json.dumps(metrics))
    return path


def test_compare_summarises_and_flags_other_data(tmp_path):
    a = _run_folder(tmp_path / "a", {"seed": 0, "lr": 1}, {"val": {"giou": 0.5, "ciou": 0.25}, "x": 1.0})
    b = _run_folder(tmp_path / "b", {"seed": 1, "lr": 1}, {"val": {"giou": 0.75, "ciou": 0.25}, "y": 2.0})
    report = compare_runs(a, b)
    assert "Not comparable sample for sample" in report and "seed" in report.split("\n\n")[1]
    assert "1 of 2 shared metrics changed; 1 equal; 1 only in a, 1 only in b." in report
    assert "| val.giou | 0.5000 | 0.7500 | +0.2500 |" in report
    assert "val.ciou" not in report  # unchanged rows are counted, not listed
    assert "val.ciou" in compare_runs(a, b, all_rows=True)


def test_kernel_start_prints_no_transport_warning(two_defaults, tmp_path, capfd):
    run_notebooks(None, only="01", run_name="w", outputs_dir=tmp_path / "o", notebook_dir=two_defaults)
    err = capfd.readouterr().err
    assert "without encryption" not in err and "IPKernelApp" not in err


def test_saved_notebook_keeps_finished_progress_bars(tmp_path):
    d = tmp_path / "notebooks"
    d.mkdir()
    make_notebook(d / "01_bar.ipynb", "run_dir = 'x'\n",
                  "import seglib\nfrom tqdm.auto import tqdm\nfor _ in tqdm(range(7), desc='loop'):\n    pass")
    run_dir = run_notebooks(None, run_name="b", outputs_dir=tmp_path / "o", notebook_dir=d)
    outputs = json.loads((run_dir / "01_bar.ipynb").read_text())["cells"][-1]["outputs"]
    assert all("application/vnd.jupyter.widget-view+json" not in o.get("data", {}) for o in outputs)
    text = "".join("".join(o.get("text", "")) for o in outputs if o.get("output_type") == "stream")
    final = text.replace("\r", "\n").strip().splitlines()[-1]
    assert final.startswith("loop: 100%") and "7/7" in final
    assert all(o.get("name") == "stdout" for o in outputs if o.get("output_type") == "stream")


def test_dry_run_lists_a_bad_choice_as_a_problem(two_defaults):
    from seglib.runs import dry_run

    problems = dry_run(None, ["difficulty=medum"], notebook_dir=two_defaults)
    assert any(p.startswith("difficulty: 'difficulty' is 'medum' (did you mean 'medium'?)") for p in problems)


def test_list_choice_names_the_bad_item():
    from seglib.config import choice_problem

    assert choice_problem("scaling_paradigms", ["boxpoints", "clicks"]) is None
    assert choice_problem("scaling_paradigms", None) is None
    msg = choice_problem("scaling_paradigms", ["boxpoints", "polygons"])
    assert "'polygons'" in msg and "did you mean 'polygon'?" in msg and "descriptors" in msg
    assert choice_problem("difficulty", "mixed") is None
