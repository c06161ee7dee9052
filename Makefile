# The two commands of the course (see README.md):
#   make course   install everything into .venv and open JupyterLab on notebooks/
#                 (HEADLESS=1 make course: start the server without opening a browser)
#   make test     run the whole test suite
PYTHON ?= python3
VENV ?= .venv
# torch is installed first and pinned: a bare `pip install torch` on Linux pulls a
# multi-GB CUDA build. On a GPU box set TORCH="torch==2.13.0" TORCH_INDEX=<your CUDA index>.
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
BIN := $(VENV)/bin
PORT ?= 8888

.PHONY: course test release

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

course: $(VENV)/.installed
	$(BIN)/jupyter lab --LabApp.default_url=/lab/tree/notebooks --port=$(PORT) \
		$(if $(HEADLESS),--no-browser --ip=0.0.0.0) $(if $(filter 0,$(shell id -u)),--allow-root)

test: $(VENV)/.installed
	$(BIN)/python -m pytest

release: $(VENV)/.installed
	$(BIN)/rlllm-course release
