#!/usr/bin/env bash
# One entry point for a fresh machine with only Python 3.11:
#   bash scripts/dev.sh prn demo      set up .venv (or reuse it) and run the main job
#   bash scripts/dev.sh test          set up .venv (or reuse it) and run the test suite
#   bash scripts/dev.sh CMD ARGS...   run any command inside the environment
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
venv="${PRN_VENV:-$here/.venv}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  echo "[dev] creating virtual environment in $venv"
  "$python" -m venv "$venv"
fi
# Reinstall only when the requirements or the package metadata change.
stamp="$venv/.prn-stamp"
want="$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[dev] installing requirements (first run takes a few minutes)"
  "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  "$venv/bin/python" -m pip install -q -r requirements.txt 2>&1 | grep -v "is ignored: it is neither" || true
  "$venv/bin/python" -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | grep -v "is ignored: it is neither" || true
  "$venv/bin/python" -c "import prn_core, torch, timm, nbval" \
    || { echo "[dev] installation failed: see the pip output above" >&2; exit 1; }
  "$venv/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null
  echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
export MPLBACKEND="${MPLBACKEND:-Agg}"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"  # see prn_core/__init__.py

if [ "${1:-}" = "test" ]; then
  shift
  exec bash scripts/test.sh "$@"
fi
[ $# -gt 0 ] || { echo "usage: bash scripts/dev.sh (test | prn ARGS... | CMD ARGS...)" >&2; exit 2; }
exec "$@"
