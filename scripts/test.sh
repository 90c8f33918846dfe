#!/usr/bin/env bash
# The test command (README.md): installs what the tests need on a fresh machine, then runs pytest.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/pipelines -x`.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: a CJK font and a monospaced digit font for the sample generator (fixtures
# render real cards).
if ! fc-list :lang=zh 2>/dev/null | grep -q . || [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf ]; then
    if [ "$(id -u)" = 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq fonts-wqy-zenhei fonts-dejavu-core fontconfig >/dev/null
    else
        echo "error: missing fonts; install fonts-wqy-zenhei fonts-dejavu-core (apt) first" >&2
        exit 1
    fi
fi
# poppler's pdftoppm: the notice test renders the PDF to an image and checks it against its layout.
if ! command -v pdftoppm >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq poppler-utils >/dev/null
    else
        echo "error: no pdftoppm; install poppler-utils (apt) first" >&2
        exit 1
    fi
fi
# Chromium for the console's browser test (Playwright drives Debian's build; never `playwright install`).
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq chromium >/dev/null
    else
        echo "error: no /usr/bin/chromium; install chromium (apt) first" >&2
        exit 1
    fi
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
# pip's resolver notes about this machine's local wheel mirrors are noise: keep them in a log
# and show it only when the install fails.
if ! .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]' >.venv/pip-install.log 2>&1; then
    cat .venv/pip-install.log >&2
    exit 1
fi
exec .venv/bin/python -m pytest "$@"
