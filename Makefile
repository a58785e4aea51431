# Rhea's documented entry points (see README.md).
#   make demo   fresh venv, synthetic data, a short training run, its result shown
#   make test   fresh venv, the whole test suite
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
RHEA := $(VENV)/bin/rhea
PYTHON ?= python3
# torch, pinned so that a fresh machine never pulls an unexpected build. TORCH_INDEX picks
# the build from PyTorch's own indexes, e.g. https://download.pytorch.org/whl/cpu (CPU only,
# the smallest download) or https://download.pytorch.org/whl/cu128 (CUDA 12.8); empty: pip's
# configured index.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
DEMO_HOME ?= demo-home
export OMP_NUM_THREADS ?= 2

.PHONY: install demo test lint bench cpp-test clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@echo "== Setting up $(VENV)/ (the first time takes a few minutes: torch is a large download)"
	@test -x $(PY) || { echo "-- creating the virtual environment with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "-- upgrading pip"
	@$(PY) -m pip install -q --upgrade pip
	@echo "-- installing $(TORCH_SPEC)$(if $(TORCH_INDEX), from $(TORCH_INDEX)) (pip shows the download)"
	@$(PY) -m pip install "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	@echo "-- installing Rhea and its dependencies (editable, with the test and lint tools)"
	@$(PY) -m pip install -q -e ".[dev]"
	@touch $@
	@echo "== $(VENV)/ is ready. To use rhea in a shell: source $(VENV)/bin/activate"

demo: install
	@echo "== make demo: 20000 synthetic samples, then 30 training epochs: about 3 minutes on two"
	@echo "   CPU cores (less with more cores or a GPU). Its home is $(DEMO_HOME)/."
	RHEA_HOME=$(DEMO_HOME) $(RHEA) data synth $(DEMO_HOME)/data --n 20000 --seed 1
	RHEA_HOME=$(DEMO_HOME) $(RHEA) data inspect $(DEMO_HOME)/data/asymptotic.h5
	run=demo-$$(date +%Y%m%d-%H%M%S); \
	RHEA_HOME=$(DEMO_HOME) $(RHEA) run --epochs 30 --batch-size 512 --set warmup_iters=2 --set epoch_num_samples=20000 --name $$run && \
	RHEA_HOME=$(DEMO_HOME) $(RHEA) show $$run && \
	echo && echo "Next: watch and compare runs in the terminal app (q quits):" && \
	echo "  source $(VENV)/bin/activate && export RHEA_HOME=$(abspath $(DEMO_HOME)) && rhea tui"

test: install
	$(PY) -m pytest -q -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff check rhea_engine rhea_tui tests benchmarks
	$(VENV)/bin/ruff format --check rhea_engine rhea_tui tests benchmarks

bench: install
	for script in benchmarks/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

cpp-test: install
	cmake -S cpp_interface -B cpp_interface/build -DCMAKE_BUILD_TYPE=Release \
	  -DPython3_EXECUTABLE=$(abspath $(PY))
	cmake --build cpp_interface/build -j 2
	cd cpp_interface/build && ctest --output-on-failure

clean:
	rm -rf $(VENV) cpp_interface/build $(DEMO_HOME)
