#!/bin/sh
# hook-recorder.sh NAME OUTDIR [EXIT [SLEEP]]: an OCI hook that records what it saw.
#
# Used by the conformance suite as the `path` of hooks (args[0] is ignored).  POSIX sh
# only, so that it runs both on the host (dash) and inside the busybox rootfs.  Writes
# into OUTDIR:
#   order               NAME appended (one line per hook call, in call order)
#   NAME.state          its stdin: the container state the runtime passed
#   NAME.ns             "KIND LINK" per namespace of the hook itself (mnt pid net ...)
#   NAME.args, .env     its argv (from $0) and environment
#   NAME.rootmarker     "yes" if /.spec-rootfs-marker exists: / is the container rootfs
#   NAME.mountinfo      its own /proc/self/mountinfo
#   NAME.pidrootmarker  same for /proc/PID/root of the state's pid (runtime-side hooks)
#   NAME.pidns          /proc/PID/ns/mnt of the state's pid, if readable
#   NAME.pidcmdline     /proc/PID/cmdline of the state's pid, NULs as spaces
#   NAME.pidmountinfo   /proc/PID/mountinfo of the state's pid
# then sleeps SLEEP seconds (default 0) and exits EXIT (default 0).
name=$1
out=$2
code=${3:-0}
pause=${4:-0}

cat >"$out/$name.state"
echo "$name" >>"$out/order"
echo "$0 $*" >"$out/$name.args"
env >"$out/$name.env"
: >"$out/$name.ns"
for kind in mnt pid net ipc uts user cgroup time; do
    link=$(readlink "/proc/self/ns/$kind" 2>/dev/null) && echo "$kind $link" >>"$out/$name.ns"
done
if [ -e /.spec-rootfs-marker ]; then echo yes; else echo no; fi >"$out/$name.rootmarker"
cat /proc/self/mountinfo >"$out/$name.mountinfo" 2>/dev/null

pid=$(sed -n 's/.*"pid"[^0-9]*\([0-9][0-9]*\).*/\1/p' "$out/$name.state" | head -n 1)
if [ -n "$pid" ] && [ "$pid" != 0 ]; then
    if [ -e "/proc/$pid/root/.spec-rootfs-marker" ]; then echo yes; else echo no; fi \
        >"$out/$name.pidrootmarker"
    readlink "/proc/$pid/ns/mnt" >"$out/$name.pidns" 2>/dev/null
    tr '\000' ' ' <"/proc/$pid/cmdline" >"$out/$name.pidcmdline" 2>/dev/null
    cat "/proc/$pid/mountinfo" >"$out/$name.pidmountinfo" 2>/dev/null
fi

# A hook that sleeps and succeeds becomes the sleep itself, so that a runtime killing it
# on timeout leaves no orphaned sleep behind.
if [ "$pause" != 0 ] && [ "$code" = 0 ]; then exec sleep "$pause"; fi
if [ "$pause" != 0 ]; then sleep "$pause"; fi
exit "$code"
