# The two commands of the README: `make demo` (the app on a shipped recording) and `make test`.
# Both create the virtual environment first when it is missing or out of date.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/*.txt scripts/setup.sh
	bash scripts/setup.sh $(VENV)
	touch $@

demo: $(STAMP)
	$(BIN)/livegesture demo

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

bench: $(STAMP)
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV)
