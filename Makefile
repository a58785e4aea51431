# Rhea's documented entry points (see README.md).
#   make demo   fresh venv, synthetic data, a short training run, its result shown
#   make test   fresh venv, the whole test suite
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
RHEA := $(VENV)/bin/rhea
PYTHON ?= python3
# A CPU build of torch by default; on a GPU cluster use e.g. TORCH_SPEC=torch==2.13.0 with
# the CUDA index of your site. Pinned so that a fresh machine does not pull a multi-GB build.
TORCH_SPEC ?= torch==2.13.0
DEMO_HOME ?= demo-home
export OMP_NUM_THREADS ?= 2

.PHONY: install demo test lint bench cpp-test clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

demo: install
	RHEA_HOME=$(DEMO_HOME) $(RHEA) data synth $(DEMO_HOME)/data --n 20000 --seed 1
	RHEA_HOME=$(DEMO_HOME) $(RHEA) data inspect $(DEMO_HOME)/data/asymptotic.h5
	run=demo-$$(date +%Y%m%d-%H%M%S); \
	RHEA_HOME=$(DEMO_HOME) $(RHEA) run --epochs 30 --batch-size 512 --set warmup_iters=2 --set epoch_num_samples=20000 --name $$run && \
	RHEA_HOME=$(DEMO_HOME) $(RHEA) show $$run

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
