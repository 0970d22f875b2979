# onsite — the two entry points on a fresh machine are `make run` and `make test`.
# Each creates .venv if missing and installs what it needs; the install is redone only when
# pyproject.toml changes (stamp file). llama-cpp-python is compiled from source once: pip
# keeps the built wheel in its cache and reuses it on every later install.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# CPU build of torch: on these machines pip finds the local 2.13.0 CPU wheel. An unpinned
# torch would pull several GB of CUDA packages. Override on other boxes, e.g.
#   make TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
TORCH_SPEC ?= torch==2.13.0
LLAMA_SPEC ?= llama-cpp-python==0.3.36
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: install run test test-all lint clean-venv

# One line per step (the install takes minutes on a fresh box); pip shows its own progress for
# the two long steps (a large wheel, a compile) and stays quiet for the many small packages.
$(STAMP):
	@echo "onsite: preparing $(VENV) (first time: several minutes; later runs skip this) …"
	@test -x $(BIN)/python || { echo "  creating the virtual environment …"; $(PYTHON) -m venv $(VENV); }
	@echo "  updating pip …"
	@$(BIN)/pip install -q --upgrade pip
	@echo "  installing torch (CPU) …"
	@$(BIN)/pip install --progress-bar on "$(TORCH_SPEC)"
	@echo "  installing llama-cpp-python (compiled once, then reused from pip's cache) …"
	@$(BIN)/pip install --progress-bar on "$(LLAMA_SPEC)"
	@echo "  installing onsite and its libraries …"
	@$(BIN)/pip install -q -e ".[test]"
	@rm -f $(VENV)/.installed-*
	@touch $@
	@echo "onsite: installed"

install: $(STAMP)

# The whole product on one box: `onsite serve` builds the sample knowledge on first start, feeds
# simulated sensors (through a private MQTT broker when mosquitto is installed), loads the model if
# its GGUF is present (labelled extractive answers otherwise) and prints the URL of the chat page,
# the REST API and the OpenAI-compatible API. Terminal chat: `.venv/bin/onsite run`.
run: install
	@$(BIN)/onsite serve

# The default suite (< ~10 min on 2 cores): everything but tests marked slow.
test: install
	$(BIN)/python -m pytest -m "not slow" -q $(PYTEST_ARGS)

test-all: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
