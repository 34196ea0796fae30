# `make run`: set up and start the workbench; `make test`: set up and run the whole test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_VERSION ?= 2.13.0
# Where torch comes from when no local CPU wheel is at hand (Linux: avoid the multi-GB CUDA build).
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: setup run test bench clean cluster cluster-stop

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	@# CPU-only torch: a local wheel when pip's find-links has one; else PyTorch's CPU index on Linux.
	if $(PIP) install --quiet --dry-run --no-index --no-deps "torch==$(TORCH_VERSION)" >/dev/null 2>&1; then \
		$(PIP) install --quiet "torch==$(TORCH_VERSION)"; \
	elif [ "$$(uname -s)" = Linux ]; then \
		$(PIP) install --quiet "torch==$(TORCH_VERSION)" --index-url $(TORCH_CPU_INDEX) --extra-index-url https://pypi.org/simple; \
	else \
		$(PIP) install --quiet "torch==$(TORCH_VERSION)"; \
	fi
	$(PIP) install --quiet -e '.[test]'
	touch $@

run: setup
	$(PY) app.py $(ARGS)

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) -m forensics.benchmark_suite accuracy --data ../shared/data/routing_dev.jsonl --json
	$(PY) -m forensics.benchmark_suite latency --data ../shared/data/routing_dev.jsonl --json

# PostgreSQL, two replicas on 127.0.0.1:7861/7862 and nginx on 127.0.0.1:8080 (README "Scaling out").
cluster: setup
	PY=$(PY) deploy/cluster.sh start

cluster-stop:
	PY=$(PY) deploy/cluster.sh stop

clean:
	rm -rf $(VENV) .pytest_cache
