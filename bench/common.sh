# Shared preamble of bench/run.sh and bench/exec.sh (sourced, not run): settings from the
# environment, the root and tool checks, and a scratch directory $WORK.
REPO=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
PYOCI=${PYOCI:-$REPO/.venv/bin/pyoci}
RUNC=${RUNC:-runc}
CRUN=${CRUN:-crun}

if [ "$(id -u)" -ne 0 ]; then
    echo "bench: must run as root" >&2
    exit 1
fi
for tool in hyperfine "$RUNC" "$PYOCI"; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found (bash .ci/setup)" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/pyoci-bench-XXXXXX)
B=$WORK/bundle
