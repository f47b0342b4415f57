#!/usr/bin/env bash
# The whole check, as CI runs it: unit tests, doctests, then the book (nbval, build, browser).
# Expects to run inside the environment that scripts/dev.sh prepares.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$(date +%s)
python -m pytest -q -p no:cacheprovider tests prn_core --doctest-modules "$@"
if compgen -G "chapters/*.ipynb" >/dev/null; then
  PRN_PROFILE=ci python -m pytest -q -p no:cacheprovider --nbval-lax chapters/
fi
echo "[test] finished in $(( $(date +%s) - start )) s"
