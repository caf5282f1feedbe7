# The two commands of the README:
#   make demo   install everything from uv.lock, then run the main job on the embedded default
#   make test   install everything from uv.lock, then run the whole test suite
# uv is installed into a project-local tool venv when it is not on PATH.

PYTHON ?= python3
UV := $(CURDIR)/.tools/bin/uv
export UV_PYTHON ?= 3.11
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export DO_NOT_TRACK = 1
export DBT_SEND_ANONYMOUS_USAGE_STATS = false
export RUNTIME__DLTHUB_TELEMETRY = false

.PHONY: demo test install lint bench clean

demo: install
	$(UV) run warehouse run

test: install
	$(UV) run pytest -n 2 --dist loadgroup --durations=15

install: $(UV)
	$(UV) sync --frozen --quiet --compile-bytecode

$(UV):
	@if command -v uv >/dev/null 2>&1; then mkdir -p .tools/bin && ln -sf "$$(command -v uv)" .tools/bin/uv; \
	else $(PYTHON) -m venv .tools && .tools/bin/pip install --quiet --disable-pip-version-check uv; fi

lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy
	$(UV) run lint-imports --no-cache

clean:
	rm -rf data .dagster_home dbt_project/target dbt_project/logs gx_site logs
