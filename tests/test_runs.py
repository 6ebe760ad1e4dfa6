"""Parameters, run folders and the papermill runner, on throw-away notebooks."""
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from seglib.config import ParamError, load_params, notebook_parameters
from seglib.runs import RunError, compare_runs, run_notebooks

ROOT = Path(__file__).resolve().parents[1]


def make_notebook(path: Path, params_src: str, body: str) -> Path:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(params_src)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# test"), cell, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture
def nbdir(tmp_path):
    d = tmp_path / "notebooks"
    d.mkdir()
    make_notebook(d / "01_first.ipynb", "run_dir = 'x'\nseed = 0\nscale = 1.5\nnames = ['a']\n",
                  "from pathlib import Path\nPath(run_dir, 'first.txt').write_text(f'{seed} {scale} {names}')")
    make_notebook(d / "02_second.ipynb", "run_dir = 'x'\nseed = 0\nflag = False\n",
                  "from pathlib import Path\nassert not flag, 'flag was set'\nPath(run_dir, 'second.txt').write_text(str(seed))")
    return d


def write_params(tmp_path, data):
    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_notebook_parameters_reads_literals(nbdir):
    assert notebook_parameters(nbdir / "01_first.ipynb").defaults == {
        "run_dir": "x", "seed": 0, "scale": 1.5, "names": ["a"]}


def test_precedence_file_then_override(nbdir, tmp_path):
    p = write_params(tmp_path, {"seed": 3, "scale": 2})
    params = load_params(p, ["seed=7"], notebook_dir=nbdir)
    assert params["seed"] == 7 and params["scale"] == 2.0 and params["flag"] is False


def test_unknown_key_lists_valid_keys(nbdir, tmp_path):
    p = write_params(tmp_path, {"sede": 3})
    with pytest.raises(ParamError) as err:
        load_params(p, notebook_dir=nbdir)
    msg = str(err.value)
    assert "'sede'" in msg and "seed" in msg and "scale" in msg and "flag" in msg


@pytest.mark.parametrize("key,value", [("seed", "three"), ("flag", 1), ("names", "a"), ("seed", 1.5)])
def test_wrong_type_names_the_key(nbdir, tmp_path, key, value):
    with pytest.raises(ParamError, match=repr(key)):
        load_params(write_params(tmp_path, {key: value}), notebook_dir=nbdir)


def test_run_dir_cannot_be_set(nbdir, tmp_path):
    with pytest.raises(ParamError, match="run_dir"):
        load_params(None, ["run_dir=/tmp"], notebook_dir=nbdir)


def test_runner_writes_run_folder_and_refuses_overwrite(nbdir, tmp_path):
    out = tmp_path / "outputs"
    p = write_params(tmp_path, {"seed": 5})
    run_dir = run_notebooks(p, ["scale=0.5"], run_name="r", outputs_dir=out, notebook_dir=nbdir)
    assert (run_dir / "first.txt").read_text() == "5 0.5 ['a']"
    assert (run_dir / "second.txt").read_text() == "5"
    assert (run_dir / "01_first.ipynb").is_file() and (run_dir / "02_second.ipynb").is_file()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["params"]["seed"] == 5 and record["params"]["scale"] == 0.5
    assert set(record["git"]) == {"commit", "dirty"}
    assert "papermill" in record["packages"] and record["machine"]["cpus"] >= 1
    assert record["started"] and record["ended"]
    assert all(v["status"] == "done" for v in record["notebooks"].values())
    assert yaml.safe_load((run_dir / "params.yaml").read_text())["seed"] == 5
    with pytest.raises(RunError, match="already exists"):
        run_notebooks(p, ["scale=0.5"], run_name="r", outputs_dir=out, notebook_dir=nbdir)
    # --resume skips finished notebooks, --force keeps the old folder aside
    (run_dir / "first.txt").write_text("kept")
    run_notebooks(p, ["scale=0.5"], run_name="r", outputs_dir=out, notebook_dir=nbdir, resume=True)
    assert (run_dir / "first.txt").read_text() == "kept"
    run_notebooks(p, ["scale=0.5"], run_name="r", outputs_dir=out, notebook_dir=nbdir, force=True)
    aside = [d for d in out.iterdir() if d.name.startswith("r.replaced-")]
    assert len(aside) == 1 and (aside[0] / "first.txt").read_text() == "kept"
    assert (out / "r" / "first.txt").read_text() == "5 0.5 ['a']"


def test_only_runs_selected_notebooks(nbdir, tmp_path):
    run_dir = run_notebooks(None, only="02", run_name="o", outputs_dir=tmp_path / "o", notebook_dir=nbdir)
    assert not (run_dir / "first.txt").exists() and (run_dir / "second.txt").exists()


def test_failed_notebook_gives_short_error(nbdir, tmp_path):
    with pytest.raises(RunError) as err:
        run_notebooks(None, ["flag=true"], run_name="f", outputs_dir=tmp_path / "o", notebook_dir=nbdir)
    msg = str(err.value)
    assert "02_second.ipynb" in msg and "flag was set" in msg and msg.count("\n") <= 2
    record = json.loads((tmp_path / "o" / "f" / "run.json").read_text())
    assert record["notebooks"]["02_second"]["status"] == "failed"
    assert record["notebooks"]["01_first"]["status"] == "done"


def test_compare_reports_param_and_metric_deltas(tmp_path):
    for name, seed, giou in (("a", 0, 0.5), ("b", 1, 0.75)):
        d = tmp_path / name
        d.mkdir()
        (d / "run.json").write_text(json.dumps({"params": {"seed": seed, "lr": 0.1}}))
        (d / "metrics.json").write_text(json.dumps({"val": {"giou": giou}}))
    report = compare_runs(tmp_path / "a", tmp_path / "b")
    assert "| seed | 0 | 1 |" in report and "lr" not in report.split("## Metrics")[0].split("|---|")[-1]
    assert "| val.giou | 0.5000 | 0.7500 | +0.2500 |" in report


def test_cli_reports_unknown_key_without_traceback(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("no_such_key: 1\n")
    proc = subprocess.run([sys.executable, "-m", "seglib", "run", str(p), "--outputs", str(tmp_path / "o")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "unknown parameter 'no_such_key'" in proc.stderr and "Traceback" not in proc.stderr


DRY_PARAMS = ("run_dir = 'x'\ndataset = 'synthref'\ndata_root = None\nrefcoco_dataset = 'refcocog'\n"
              "refcoco_split_by = 'umd'\nimage_dir = None\nreasonseg_root = None\npolicy = None\n"
              "segmenter = 'sam2'\nsam2_config = None\nsam2_checkpoint = None\n")


@pytest.fixture(scope="module")
def dry_inputs(tmp_path_factory):
    """A small refer root, a ReasonSeg root, a policy folder and a real (random) SAM2.1 hiera-t checkpoint."""
    import torch
    from sam2.build_sam import build_sam2

    from seglib.fullscale import build_reasonseg_standin, build_refcocog_standin

    base = tmp_path_factory.mktemp("dry")
    nb = base / "nb"
    nb.mkdir()
    make_notebook(nb / "01_x.ipynb", DRY_PARAMS, "pass")
    refer = build_refcocog_standin(base / "refer", refs_per_split={"train": 2, "val": 1, "test": 1})
    reasonseg = build_reasonseg_standin(base / "ReasonSeg", per_split={"val": 1, "test": 1})
    policy = base / "policy"
    policy.mkdir()
    (policy / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    (policy / "model.safetensors").write_bytes(b"weights")
    (policy / "tokenizer_config.json").write_text("{}")
    torch.manual_seed(0)
    ckpt = base / "sam2.1_hiera_t.pt"
    torch.save({"model": build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", None, device="cpu").state_dict()}, ckpt)
    good = ["dataset=refcoco", f"data_root={refer['data_root']}", f"reasonseg_root={reasonseg}",
            f"policy={policy}", "sam2_config=configs/sam2.1/sam2.1_hiera_t.yaml", f"sam2_checkpoint={ckpt}"]
    return {"nb": nb, "good": good, "base": base, "refer": refer}


def _dry(inputs, *changes):
    from seglib.runs import dry_run

    return dry_run(None, [*inputs["good"], *changes], notebook_dir=inputs["nb"])


def test_dry_run_passes_complete_inputs(dry_inputs):
    assert _dry(dry_inputs) == []


def test_dry_run_refuses_empty_data_root(dry_inputs):
    empty = dry_inputs["base"] / "empty_root"
    empty.mkdir()
    problems = _dry(dry_inputs, f"data_root={empty}")
    assert problems and all(p.startswith("data_root:") for p in problems)
    assert "refcocog/refs(umd).p" in problems[0] and "refcocog/instances.json" in problems[1]


def test_dry_run_refuses_unknown_refer_dataset_and_split(dry_inputs):
    problems = _dry(dry_inputs, "refcoco_dataset=refcocoX")
    assert len(problems) == 1 and problems[0].startswith("refcoco_dataset:") and "refcocoX" in problems[0]
    # refcoco+ has only the unc split (refer toolkit); umd belongs to refcocog
    problems = _dry(dry_inputs, "refcoco_dataset=refcoco+")
    assert len(problems) == 1 and problems[0].startswith("refcoco_split_by:") and "umd" in problems[0]


def test_dry_run_refuses_refs_without_their_images(dry_inputs):
    elsewhere = dry_inputs["base"] / "no_images"
    elsewhere.mkdir()
    problems = _dry(dry_inputs, f"image_dir={elsewhere}")
    # 4 refs (2 train + 1 val + 1 test), none of whose images is in the empty folder
    assert problems == [f"image_dir: 4 of the first 4 refs' images are not in {elsewhere} "
                        f"(first: COCO_train2014_000000100000.jpg)"]


def test_dry_run_refuses_reasonseg_root_without_split_folders(dry_inputs):
    bad = dry_inputs["base"] / "ReasonSeg_flat"
    (bad / "images").mkdir(parents=True)
    problems = _dry(dry_inputs, f"reasonseg_root={bad}")
    assert len(problems) == 1 and problems[0].startswith("reasonseg_root:") and "['val', 'test']" in problems[0]
    lonely = dry_inputs["base"] / "ReasonSeg_noimg"
    (lonely / "val").mkdir(parents=True)
    (lonely / "val" / "a.json").write_text("{}")
    problems = _dry(dry_inputs, f"reasonseg_root={lonely}")
    assert len(problems) == 1 and "have no image beside them (first: a.json)" in problems[0]


def test_dry_run_refuses_empty_policy_folder(dry_inputs):
    empty = dry_inputs["base"] / "empty_policy"
    empty.mkdir()
    problems = _dry(dry_inputs, f"policy={empty}")
    assert len(problems) == 3 and all(p.startswith("policy:") for p in problems)
    assert "no config.json" in problems[0] and "no weights" in problems[1] and "no tokenizer" in problems[2]
    adapter = dry_inputs["base"] / "adapter_only"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(empty)}))
    problems = _dry(dry_inputs, f"policy={adapter}")
    assert len(problems) == 1 and "adapter_model.safetensors" in problems[0]


def test_dry_run_refuses_sam2_config_checkpoint_mismatch(dry_inputs):
    problems = _dry(dry_inputs, "sam2_config=configs/sam2.1/sam2.1_hiera_l.yaml")
    assert len(problems) == 1 and problems[0].startswith("sam2_checkpoint:")
    # hiera-t ends its trunk at 768 channels, hiera-l at 1152 (sam2's configs: embed_dim 96 / 144, x8)
    assert "does not match sam2_config configs/sam2.1/sam2.1_hiera_l.yaml" in problems[0]
    assert "shapes differ" in problems[0] and "keys missing" in problems[0]
    not_sam = dry_inputs["base"] / "not_sam.pt"
    not_sam.write_bytes(b"x")
    problems = _dry(dry_inputs, f"sam2_checkpoint={not_sam}")
    assert len(problems) == 1 and "not a readable torch checkpoint" in problems[0]


def test_dry_run_reports_missing_paths_and_names(dry_inputs):
    problems = _dry(dry_inputs, "sam2_checkpoint=/nowhere/sam2.1_hiera_large.pt", "sam2_config=configs/nope.yaml",
                    "policy=NoSuchOrg/no-such-model", "data_root=/nowhere/refcocog")
    text = "\n".join(problems)
    assert len(problems) == 4
    assert "/nowhere/sam2.1_hiera_large.pt" in text and "configs/nope.yaml" in text
    assert "NoSuchOrg/no-such-model" in text and "/nowhere/refcocog" in text


def test_resume_accepts_changes_only_for_notebooks_still_to_run(nbdir, tmp_path):
    out = tmp_path / "o"
    with pytest.raises(RunError):
        run_notebooks(None, ["flag=true"], run_name="c", outputs_dir=out, notebook_dir=nbdir)  # 02 fails, 01 done
    run_dir = run_notebooks(None, ["flag=false"], run_name="c", outputs_dir=out, notebook_dir=nbdir, resume=True)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["params"]["flag"] is False and (run_dir / "second.txt").read_text() == "0"
    assert record["param_changes"][0]["changed"] == {"flag": {"old": True, "new": False}}
    with pytest.raises(RunError, match=r"scale \(used by 01_first\)"):  # 01 finished with scale 1.5
        run_notebooks(None, ["flag=false", "scale=0.7"], run_name="c", outputs_dir=out, notebook_dir=nbdir,
                      resume=True)
    with pytest.raises(RunError, match=r"seed \(used by 01_first, 02_second\)"):
        run_notebooks(None, ["flag=false", "seed=3"], run_name="c", outputs_dir=out, notebook_dir=nbdir, resume=True)
