# The two commands of the course (see README.md):
#   make course   install everything into .venv and open JupyterLab on notebooks/
#                 (HEADLESS=1 make course: start the server without opening a browser;
#                  ROLE=instructor make course: with nbgrader's formgrader and course tools)
#   make test     run the whole test suite
#   make test-seeds  run every solution notebook under seeds 2 and 3 too (by hand, before a release)
PYTHON ?= python3
VENV ?= .venv
# torch is installed first and pinned: a bare `pip install torch` on Linux pulls a
# multi-GB CUDA build. On a GPU box set TORCH="torch==2.13.0" TORCH_INDEX=<your CUDA index>.
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
# verl is installed without its pins (see the extra "scale" in pyproject.toml)
VERL ?= verl==0.9.1
BIN := $(VENV)/bin
PORT ?= 8888
# A student's lab has nbgrader's Validate and nothing that needs an nbgrader exchange or
# gradebook (binder/jupyter-student switches those off); an instructor's has all of nbgrader.
ROLE ?= student
ifeq ($(filter student instructor,$(ROLE)),)
$(error ROLE must be student or instructor, got "$(ROLE)")
endif
LAB_CONFIG := $(if $(filter student,$(ROLE)),JUPYTER_CONFIG_PATH=$(CURDIR)/binder/jupyter-student$(if $(JUPYTER_CONFIG_PATH),:$(JUPYTER_CONFIG_PATH)))
# The notebooks' formulas are checked with MathJax, the renderer JupyterLab uses.
MATHJAX := $(VENV)/mathjax/node_modules/mathjax-full

.PHONY: course test test-seeds release

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -e ".[dev,scale]"
	$(BIN)/python -m pip install --quiet --no-deps "$(VERL)"
	touch $@

$(MATHJAX): | $(VENV)/.installed
	npm install --prefix $(VENV)/mathjax --no-audit --no-fund --silent mathjax-full@3.2.2

course: $(VENV)/.installed
	$(LAB_CONFIG) $(BIN)/jupyter lab --LabApp.default_url=/lab/tree/notebooks --port=$(PORT) \
		$(if $(HEADLESS),--no-browser --ip=0.0.0.0) $(if $(filter 0,$(shell id -u)),--allow-root)

# The unit tests on two workers (pytest-xdist), then the notebook tests, which run two kernels
# at a time on their own; both always run, and `make test` fails if either does.
NOTEBOOK_TESTS := tests/test_course.py tests/test_notebook_seeds.py
test: $(VENV)/.installed $(MATHJAX)
	$(BIN)/python -m pytest -n 2 $(addprefix --ignore=,$(NOTEBOOK_TESTS)); unit=$$?; \
	$(BIN)/python -m pytest $(NOTEBOOK_TESTS) && exit $$unit

SEEDS ?= 2,3
test-seeds: $(VENV)/.installed
	RLLLM_NOTEBOOK_SEEDS=$(SEEDS) $(BIN)/python -m pytest tests/test_notebook_seeds.py

release: $(VENV)/.installed
	$(BIN)/rlllm-course release
