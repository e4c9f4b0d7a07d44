#!/usr/bin/env bash
# Benchmark `pyoci run` against `runc run` on a busybox bundle running /bin/true.
#
#   bash bench/run.sh                 # 3 warm-up runs, 30 timed runs per runtime
#   RUNS=100 WARMUP=5 bash bench/run.sh
#   WITH_CRUN=1 bash bench/run.sh     # also time crun (the ratio stays pyoci/runc)
#   JSON=out.json bash bench/run.sh   # keep hyperfine's JSON export
#
# Needs root, hyperfine, runc (and crun), busybox-static: `bash .ci/setup` installs them.
set -euo pipefail

# shellcheck source=bench/common.sh
. "$(dirname "$(readlink -f "$0")")/common.sh"
R_PYOCI=$WORK/root-pyoci
R_RUNC=$WORK/root-runc
R_CRUN=$WORK/root-crun

cleanup() {
    # Containers left behind by a failed run: force-delete them, then drop the temp dir.
    local rt root id
    for pair in "$PYOCI:$R_PYOCI" "$RUNC:$R_RUNC" "$CRUN:$R_CRUN"; do
        rt=${pair%%:*} root=${pair#*:}
        [ -d "$root" ] || continue
        for id in $(ls -A "$root"); do
            [ -d "$root/$id" ] && "$rt" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
        done
    done
    rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$R_PYOCI" "$R_RUNC" "$R_CRUN"
/usr/bin/python3 "$REPO/.ci/make-bundle" "$B"
"$RUNC" spec --bundle "$B"
/usr/bin/python3 "$REPO/.ci/make-bundle" "$B" --config-only --args /bin/true

# One plain run of each first, so a broken runtime fails loudly instead of inside hyperfine.
# Each hyperfine run gets a unique id from its shell's pid ($$); `run` without --detach
# deletes its container when the process exits, for both runtimes.
cmd_pyoci="$PYOCI --root $R_PYOCI run --bundle $B bench-\$\$ </dev/null"
cmd_runc="$RUNC --root $R_RUNC run --bundle $B bench-\$\$ </dev/null"
cmd_crun="$CRUN --root $R_CRUN run --bundle $B bench-\$\$ </dev/null"
names=(pyoci runc)
cmds=("$cmd_pyoci" "$cmd_runc")
if [ "${WITH_CRUN:-0}" = 1 ] && command -v "$CRUN" >/dev/null; then
    names+=(crun)
    cmds+=("$cmd_crun")
fi
for i in "${!cmds[@]}"; do
    if ! sh -c "${cmds[$i]}"; then
        echo "bench: ${names[$i]} cannot run the bundle: ${cmds[$i]}" >&2
        exit 1
    fi
done

json=${JSON:-$WORK/result.json}
hyperfine_args=(--warmup "$WARMUP" --runs "$RUNS" --export-json "$json")
for i in "${!cmds[@]}"; do
    hyperfine_args+=(--command-name "${names[$i]} run /bin/true" "${cmds[$i]}")
done
hyperfine "${hyperfine_args[@]}"

/usr/bin/python3 - "$json" <<'PY'
import json
import sys

results = json.load(open(sys.argv[1]))["results"]
mean = {r["command"].split()[0]: r["mean"] for r in results}
for name, t in mean.items():
    print(f"{name:6s} mean {t * 1000:8.1f} ms")
print(f"pyoci run /bin/true vs runc: ratio {mean['pyoci'] / mean['runc']:.2f}x (pyoci/runc)")
if "crun" in mean:
    print(f"pyoci run /bin/true vs crun: ratio {mean['pyoci'] / mean['crun']:.2f}x (pyoci/crun)")
PY
