# Two commands do everything on a fresh machine:
#   make run    bootstrap .venv, then run every notebook on params/quick.yaml (PARAMS=params/smoke.yaml: the minutes-long check)
#   make test   bootstrap .venv and the system packages the tests need, then the whole test suite
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
PARAMS ?= params/quick.yaml

.PHONY: run test venv system-packages gpu-check deepspeed bench clean-venv

run: $(STAMP)
	$(PY) -m seglib run $(PARAMS)

test: $(STAMP) system-packages
	$(PY) -m pytest $(PYTEST_ARGS)

# Debian packages the tests need (chromium for the demo's browser test), installed when missing.
system-packages:
	@./scripts/system_packages.sh

venv: $(STAMP)

# torch first, pinned, so nothing can pull a CUDA build; then the exact lock;
# then sam2 (an sdist) built against that torch without CUDA; then seglib itself.
$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --disable-pip-version-check -q torch==2.13.0
	$(PIP) install --disable-pip-version-check -q -r requirements.lock
	SAM2_BUILD_CUDA=0 $(PIP) install --disable-pip-version-check -q --no-build-isolation --no-deps sam2==1.1.0
	$(PIP) install --disable-pip-version-check -q --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# The prepared GPU check (bench/gpu_check.py): full-size Qwen2.5-VL-3B SFT/GRPO steps, SAM2.1 hiera-l, vLLM if present.
gpu-check: $(STAMP)
	$(PY) bench/gpu_check.py

# Every CPU benchmark at quick sizes, one line each (ARGS=--full for the README's sizes, ARGS=--gpu on a GPU).
bench: $(STAMP)
	$(PY) -m bench $(ARGS)

# Optional: DeepSpeed for the ZeRO launchers (pinned apart, so the default environment stays without it).
deepspeed: $(STAMP)
	DS_BUILD_OPS=0 $(PIP) install --disable-pip-version-check -q -r requirements-deepspeed.lock

clean-venv:
	rm -rf $(VENV)
