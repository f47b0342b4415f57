#!/usr/bin/env bash
# Build the book as CI does and look at every page in a real browser:
#   bash scripts/book.sh [--screenshots DIR]
# 1. installs Debian's chromium when it is missing (needs root or sudo; skipped when present);
# 2. builds with `jupyter-book build . -W -n --keep-going --all`: any warning fails the build,
#    and --all re-reads every page so that warnings of unchanged pages are not hidden by the cache;
# 3. runs scripts/check_book.py on _build/html (titles, images, console errors, screenshots).
# Runs inside the environment that scripts/dev.sh prepares, or with ./.venv when it exists.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$(date +%s)
if ! command -v jupyter-book >/dev/null && [ -x .venv/bin/jupyter-book ]; then
  export PATH="$PWD/.venv/bin:$PATH"
fi

if [ ! -x /usr/bin/chromium ]; then
  echo "[book] installing Debian's chromium for the browser check"
  as_root=""
  [ "$(id -u)" -eq 0 ] || as_root="sudo"
  $as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

jupyter-book build . -W -n --keep-going --all
built=$(date +%s)
python scripts/check_book.py _build/html "$@"
echo "[book] build $(( built - start )) s, browser check $(( $(date +%s) - built )) s"
