"""The three dependency lists (pyproject, requirements.lock, environment.yml) agree."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines):
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        assert m, f"not an exact pin: {line!r}"
        pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def lock_pins():
    return _pins((ROOT / "requirements.lock").read_text().splitlines())


def test_lock_pins_torch_cpu_release():
    assert lock_pins()["torch"] == "2.13.0"


def test_environment_yml_equals_lock():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip_section
    assert _pins(pip_section) == lock_pins()


def test_pyproject_pins_match_lock():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    deps = project["dependencies"] + [d for name, ds in extras.items() if name != "deepspeed" for d in ds]
    lock = lock_pins()
    # the deepspeed extra is pinned in its own lock, which adds packages and changes none of the main lock
    ds_lock = _pins((ROOT / "requirements-deepspeed.lock").read_text().splitlines())
    assert not set(ds_lock) & set(lock)
    for name, version in _pins(extras.get("deepspeed", [])).items():
        assert ds_lock.get(name) == version, f"{name}=={version} in the deepspeed extra but not in its lock"
    for name, version in _pins(deps).items():
        assert lock.get(name) == version, f"{name}=={version} in pyproject but {lock.get(name)} in the lock"


def test_makefile_installs_pinned_torch_first():
    text = (ROOT / "Makefile").read_text()
    first_install = text.index("pip install") if "pip install" in text else text.index("$(PIP) install")
    assert "torch==2.13.0" in text[first_install:first_install + 120]
    assert "SAM2_BUILD_CUDA=0" in text and "--no-build-isolation" in text


def test_ci_calls_make_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
