#!/usr/bin/env bash
# pyoci vs runc vs crun on one busybox bundle: prints the table of ratios and rewrites
# bench/RESULTS.md. As root, after `bash .ci/setup`; see bench/README.md and the docstring
# of bench/compare.py for the scenarios and the knobs (QUICK=1, ONLY=..., RUNS=...).
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$(readlink -f "$0")")/compare.py" "$@"
