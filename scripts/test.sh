#!/usr/bin/env bash
# Install bandit-router with its dev tools into .venv, then run every check CI runs:
# ruff, mypy and the whole pytest suite (real VW, real MiniLM, SQLite and PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
# A CPU build of torch first; otherwise sentence-transformers pulls a multi-GB CUDA build.
# shellcheck disable=SC2086  # TORCH_SPEC may carry pip options (--index-url ...)
.venv/bin/pip install -q ${TORCH_SPEC:-torch==2.13.0}
# Then the exact versions CI tests (requirements.lock, written by scripts/deps.py lock).
.venv/bin/pip install -q -r requirements.lock
.venv/bin/pip install -q --no-deps -e .

# The PostgreSQL tests need a server at BANDIT_ROUTER_TEST_POSTGRES_URL
# (default postgres@127.0.0.1:5432/test): start the local cluster if it is installed and down.
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
    fi
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi

# The dependency audit: a known vulnerability fails; no advisory data reachable is said
# plainly (exit 2) and is not a pass, but it does not stop the tests on an offline machine.
audit=0
.venv/bin/python scripts/deps.py audit || audit=$?
if [ "$audit" = 1 ]; then exit 1; fi

# Headless Chromium for the dashboard's browser test, from the system package manager.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
    $sudo apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
        || { $sudo apt-get update -q >/dev/null 2>&1 \
             && $sudo apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; } \
        || echo "chromium could not be installed: the dashboard's browser test will be skipped"
fi

.venv/bin/ruff check .
.venv/bin/mypy
# Two workers (pytest-xdist): this machine's two cores; PYTEST_WORKERS=0 runs in one process.
# -m "slow or not slow": everything (a bare pytest runs the fast tier, see pyproject.toml).
.venv/bin/python -m pytest -q -n "${PYTEST_WORKERS:-2}" -m "slow or not slow"
