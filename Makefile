# `make demo` and `make test` set up the environment on first use (.venv/, see scripts/golf_env.py),
# then run the CPU demo or the tests in it. Without make: python3 scripts/golf_env.py demo|test.
PYTHON ?= python3
ARGS ?=

.PHONY: demo test setup
demo:
	$(PYTHON) scripts/golf_env.py demo $(ARGS)

test:
	$(PYTHON) scripts/golf_env.py test $(ARGS)

setup:
	$(PYTHON) scripts/golf_env.py setup
