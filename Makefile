# make test  -- the test suite (makes .venv and installs pinned dependencies if needed)
# make test-fast -- the suite without the tests marked slow, for a quick local loop
# make lint  -- ruff check (pyflakes and pycodestyle rules, configured in pyproject.toml)
#               then mypy over treelstm/ (its [tool.mypy] settings in pyproject.toml)
# make demo  -- the main job: Tree-LSTM vs nn.LSTM on the bundled sentiment trees (see README)
# make tour   -- a short tour of the library API (both backends, chain == nn.LSTM)
# make docs   -- the documentation site in docs/_build/html (Sphinx, warnings are errors), then
#                its code run (tests/test_docs.py); installs the docs extra first
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DOCS_STAMP := $(VENV)/.docs-installed-stamp

.PHONY: install test test-fast lint demo tour clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dgl,data,test]'
	touch $(STAMP)

# pytest exits 5 when it collects no tests: that is a failure here, not a pass.
test: $(STAMP)
	$(PY) -m pytest tests -q; status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; \
	exit $$status

test-fast: $(STAMP)
	$(PY) -m pytest tests -q -m "not slow"; status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test-fast: pytest collected no tests" >&2; exit 1; fi; \
	exit $$status

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

demo: $(STAMP)
	$(PY) examples/compare.py --out runs/demo --overwrite

tour: $(STAMP)
	$(PY) examples/demo.py

clean:
	rm -rf $(VENV) build *.egg-info

# The docs extra (sphinx, myst-parser) is installed by `make docs` only: `make test` does not need it.
.PHONY: docs
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dgl,data,test,docs]'
	touch $(DOCS_STAMP)

# -E: read every page again, so that an unchanged page's warnings are not hidden by the cache.
docs: $(DOCS_STAMP)
	$(PY) -m sphinx -W --keep-going -E -q -b html docs docs/_build/html
	$(PY) -m pytest tests/test_docs.py -q -p no:cacheprovider
	@echo "make docs: docs/_build/html/index.html"
