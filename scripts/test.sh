#!/usr/bin/env bash
# The whole check, as CI runs it: unit tests and doctests, the chapters under nbval in the ci
# profile, then the book build (warnings are errors) and the headless-browser page check.
# Expects to run inside the environment that scripts/dev.sh prepares.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export HF_HUB_OFFLINE=1  # tests never reach a model hub; fail fast instead of retrying
t0=$(date +%s)
python -m pytest -q -p no:cacheprovider tests prn_core --doctest-modules "$@"
t1=$(date +%s)
PRN_PROFILE=ci python -m pytest -q -p no:cacheprovider --nbval-lax --durations=0 chapters/
t2=$(date +%s)
bash scripts/book.sh
t3=$(date +%s)
echo "[test] unit $(( t1 - t0 )) s, notebooks $(( t2 - t1 )) s, book $(( t3 - t2 )) s, total $(( t3 - t0 )) s"
