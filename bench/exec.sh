#!/usr/bin/env bash
# Benchmark `pyoci exec <id> true` against `runc exec <id> true`: the same bundle (runc's
# default spec, a busybox rootfs, the process `sleep`), one running container per runtime,
# each exec joining every namespace and the cgroup of its container.
#
#   bash bench/exec.sh                 # 3 warm-up runs, 30 timed runs per runtime
#   RUNS=100 WARMUP=5 bash bench/exec.sh
#   WITH_CRUN=1 bash bench/exec.sh     # also time crun (the ratio stays pyoci/runc)
#   JSON=out.json bash bench/exec.sh   # keep hyperfine's JSON export
#
# It prints the ratio of mean (and median) wall-clock times, and of CPU time (user+system
# of the runtime and its children), which a busy machine distorts much less.
#
# Needs root, hyperfine, runc (and crun), busybox-static: `bash .ci/setup` installs them.
# The bundle recipe is bench/run.sh's.
set -euo pipefail

# shellcheck source=bench/common.sh
. "$(dirname "$(readlink -f "$0")")/common.sh"
ID=bench-exec-$$
pairs=("$PYOCI:$WORK/root-pyoci" "$RUNC:$WORK/root-runc")
if [ "${WITH_CRUN:-0}" = 1 ] && command -v "$CRUN" >/dev/null; then
    pairs+=("$CRUN:$WORK/root-crun")
fi

cleanup() {
    local rt root
    for pair in "${pairs[@]}"; do
        rt=${pair%%:*} root=${pair#*:}
        [ -d "$root/$ID" ] && "$rt" --root "$root" delete --force "$ID" >/dev/null 2>&1 || true
    done
    rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Byte-compile pyoci first: with PYTHONDONTWRITEBYTECODE set (as in CI shells) a stale or
# missing .pyc would be recompiled on every timed run.
if [ -x "$REPO/.venv/bin/python" ]; then
    "$REPO/.venv/bin/python" -m compileall -q "$REPO/pyoci" >/dev/null || true
fi
/usr/bin/python3 "$REPO/.ci/make-bundle" "$B"
"$RUNC" spec --bundle "$B"
/usr/bin/python3 "$REPO/.ci/make-bundle" "$B" --config-only --args sleep 1000000

names=() cmds=()
for pair in "${pairs[@]}"; do
    rt=${pair%%:*} root=${pair#*:}
    name=$(basename "$rt")
    mkdir -p "$root"
    if ! "$rt" --root "$root" run --detach --bundle "$B" "$ID" </dev/null >/dev/null 2>&1; then
        echo "bench: $name cannot run the bundle" >&2
        exit 1
    fi
    cmd="$rt --root $root exec $ID true </dev/null"
    # One plain exec first, so a broken runtime fails loudly instead of inside hyperfine.
    if ! sh -c "$cmd"; then
        echo "bench: $name cannot exec into its container: $cmd" >&2
        exit 1
    fi
    names+=("$name") cmds+=("$cmd")
done

json=${JSON:-$WORK/result.json}
hyperfine_args=(--warmup "$WARMUP" --runs "$RUNS" --export-json "$json")
for i in "${!cmds[@]}"; do
    hyperfine_args+=(--command-name "${names[$i]} exec true" "${cmds[$i]}")
done
hyperfine "${hyperfine_args[@]}"

/usr/bin/python3 - "$json" <<'PY'
import json
import sys

results = json.load(open(sys.argv[1]))["results"]
mean = {r["command"].split()[0]: r["mean"] for r in results}
median = {r["command"].split()[0]: r["median"] for r in results}
# CPU time (user+system, the runtime and its children) moves far less with the load of
# a shared machine than wall-clock time does.
cpu = {r["command"].split()[0]: r["user"] + r["system"] for r in results}
for name, t in mean.items():
    print(f"{name:6s} mean {t * 1000:8.1f} ms  median {median[name] * 1000:8.1f} ms  "
          f"cpu {cpu[name] * 1000:8.1f} ms")
print(f"pyoci exec true vs runc: ratio {mean['pyoci'] / mean['runc']:.2f}x (pyoci/runc), "
      f"median {median['pyoci'] / median['runc']:.2f}x, cpu {cpu['pyoci'] / cpu['runc']:.2f}x")
if "crun" in mean:
    print(f"pyoci exec true vs crun: ratio {mean['pyoci'] / mean['crun']:.2f}x (pyoci/crun), "
          f"cpu {cpu['pyoci'] / cpu['crun']:.2f}x")
PY
