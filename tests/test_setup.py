"""The README's set-up promises: make test installs the system packages it needs; .ci/run adds nothing."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "system_packages.sh"


def _fake_bin(tmp_path: Path, uid: int, with_sudo: bool = False) -> Path:
    """A PATH with bash's basics, an `id` that reports `uid`, and an apt-get (and sudo) that log their arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "env", "cat", "echo"):
        real = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        if real:
            (bin_dir / tool).symlink_to(real)
    log = tmp_path / "calls.log"
    scripts = {"id": f"#!/bin/bash\necho {uid}\n",
               "apt-get": f"#!/bin/bash\necho \"apt-get $*\" >> {log}\n"}
    if with_sudo:
        scripts["sudo"] = f"#!/bin/bash\nif [ \"$1\" = -n ]; then shift; fi\n[ \"$1\" = true ] && exit 0\necho \"sudo $*\" >> {log}\n"
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def _run(tmp_path: Path, bin_dir: Path, chromium: Path) -> subprocess.CompletedProcess:
    env = {"PATH": str(bin_dir), "CHROMIUM": str(chromium), "HOME": str(tmp_path)}
    return subprocess.run([str(bin_dir / "bash"), str(SCRIPT)], env=env, capture_output=True, text=True)


def test_present_chromium_installs_nothing(tmp_path):
    fake_chromium = tmp_path / "chromium"
    fake_chromium.write_text("#!/bin/sh\n")
    fake_chromium.chmod(0o755)
    res = _run(tmp_path, _fake_bin(tmp_path, uid=0), fake_chromium)
    assert res.returncode == 0, res.stderr
    assert not (tmp_path / "calls.log").exists()


def test_root_uses_apt_get(tmp_path):
    res = _run(tmp_path, _fake_bin(tmp_path, uid=0), tmp_path / "absent")
    assert res.returncode == 0, res.stderr
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert calls[0] == "apt-get update -qq"
    assert calls[1] == "apt-get install -y -qq chromium"


def test_non_root_uses_sudo(tmp_path):
    res = _run(tmp_path, _fake_bin(tmp_path, uid=1000, with_sudo=True), tmp_path / "absent")
    assert res.returncode == 0, res.stderr
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert calls == ["sudo apt-get update -qq", "sudo apt-get install -y -qq chromium"]


def test_non_root_without_sudo_says_what_to_do(tmp_path):
    res = _run(tmp_path, _fake_bin(tmp_path, uid=1000), tmp_path / "absent")
    assert res.returncode == 1
    assert "chromium" in res.stderr and "apt-get install -y chromium" in res.stderr
    assert not (tmp_path / "calls.log").exists()


def test_ci_runs_only_the_readme_test_command():
    commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert commands == ["set -euo pipefail", 'cd "$(dirname "$0")/.."', "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert "test: $(STAMP) system-packages" in makefile
    assert "make test" in (ROOT / "README.md").read_text()


def test_no_garbled_metric_names():
    """Copying from a web page once turned "Acc@0.5" into an e-mail protection placeholder."""
    bad = "email" + " protected"
    offenders = []
    for folder in ("seglib", "notebooks", "tests", "params", "docs", "bench"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".ipynb", ".md", ".yaml"}:
                if bad in path.read_text(errors="ignore"):
                    offenders.append(str(path.relative_to(ROOT)))
    if bad in (ROOT / "README.md").read_text():
        offenders.append("README.md")
    assert offenders == []


def test_methods_page_exists_and_is_linked():
    methods = (ROOT / "docs" / "METHODS.md").read_text()
    for repo in ("aim-uofa/SegAgent", "dvlab-research/Seg-Zero", "dvlab-research/VisionReasoner", "ysj9909/StAR",
                 "songtianhui/SimpleSeg", "mc-lan/Text4Seg"):
        assert f"https://github.com/{repo}" in methods, repo
    readme = (ROOT / "README.md").read_text()
    assert "(docs/METHODS.md)" in readme
    for word in ("F_sim", "NoC@85", "PRM", "REST", "StaR+", "GSPO"):
        assert f"**{word}" in readme, word  # each abbreviation is spelled out in the README's list


def test_project_never_points_outside_itself():
    outside = ".." + "/shared"
    for folder in ("seglib", "notebooks", "tests", "params", "docs", "bench"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".ipynb", ".md", ".yaml"}:
                assert outside not in path.read_text(errors="ignore"), path


def test_project_speaks_of_itself_only():
    """No tracker or work-log language (the word issue followed by a number or "target") in code or docs."""
    import re

    pattern = re.compile(r"\bissue (target|\d+)\b", re.IGNORECASE)
    for folder in ("seglib", "notebooks", "tests", "params", "docs", "bench"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".ipynb", ".md", ".yaml"}:
                assert not pattern.search(path.read_text(errors="ignore")), path
    assert not pattern.search((ROOT / "README.md").read_text())
