#!/usr/bin/python3
"""pyoci, runc and crun side by side on one busybox bundle: the ratios of issue 7.

    bash bench/compare.sh                  # as root, after `bash .ci/setup` (a few minutes)
    QUICK=1 bash bench/compare.sh          # fewer runs, 50 containers present: a smoke test
    ONLY="run state" bash bench/compare.sh # some scenarios only (names as in the table)

Every scenario is timed with hyperfine for each runtime in ROUNDS interleaved rounds:
each round times every runtime with a share of the runs, the order rotating from round
to round (pyoci runc crun, runc crun pyoci, ...), so that a change of load on the
machine during a scenario hits all three alike rather than the one timed last. The
table shows the mean over all runs and the ratios pyoci/runc and pyoci/crun. The table,
the machine and the versions are written to bench/RESULTS.md (``RESULTS=path`` to write
elsewhere, ``RESULTS=`` not at all).

Scenarios (ids never contain "pyoci": the test suite's leak check owns such cgroups):

run        ``RT run --bundle B id`` of /bin/true (runc's default spec)
cycle      ``RT create --bundle B id && RT start id && RT delete --force id`` (youki's)
start      ``RT start id`` of a created container (created, and the last one deleted, by
           hyperfine's ``--prepare``, untimed)
delete     ``RT delete --force id`` of a stopped container (made by ``--prepare``)
seq100     a shell loop of 100 sequential ``RT run`` (crun's README recipe)
exec       ``RT exec id true`` into a running container (``sleep``)
kill       ``RT kill id CONT`` to that running container
state      ``RT state id`` of it, with ``PRESENT`` (200) other containers in the root
list       ``RT list`` of those ``PRESENT + 1`` containers
rss-run    peak RSS of ``RT run`` (``/usr/bin/time -f %M``; waited-for children count)
rss-state  peak RSS of ``RT state id``
podman     ``podman --runtime RT run --rm IMAGE true``, end to end (a private podman
           configuration and storage, as tests/clients/ makes them)

crun 1.8 refuses a hybrid cgroup host. On such a host crun (and podman with crun) runs
in a private mount namespace (``unshare -m --propagation private``) where a scratch
tmpfs is mounted over /sys/fs/cgroup/unified: crun then sees a cgroup v1 host. Only
that namespace sees the tmpfs; the host's cgroup mounts are never touched. hyperfine
itself runs in that namespace (``nsenter``), so crun's times carry no extra exec.

Knobs (environment): RUNS (20), ROUNDS (4), WARMUP (3, before a runtime's first round;
1 before the others), SEQ_N (100), SEQ_RUNS (2), PRESENT (200),
RSS_RUNS (5), PODMAN_RUNS (10), QUICK, ONLY, RESULTS, PYOCI, RUNC, CRUN, KEEP_JSON (a
directory for hyperfine's JSON exports), PODMAN_CALLS (0).

PODMAN_CALLS=N (with the podman scenario): after the timing, N more ``podman run --rm``
per runtime (alternating) through a wrapper that logs every call podman and conmon make
to the runtime (argv, exit status, duration), and one more per runtime under
``strace -e trace=execve`` (not -f: the runtime's own process) to see which calls exec
an interpreter; the calls, in order, with their median durations, are printed and
written to RESULTS.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import json
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = os.environ.get("QUICK", "") not in ("", "0")


def _knob(name: str, default: int, quick: int) -> int:
    return int(os.environ.get(name) or (quick if QUICK else default))


RUNS = _knob("RUNS", 20, 5)
ROUNDS = _knob("ROUNDS", 4, 2)
WARMUP = _knob("WARMUP", 3, 1)
SEQ_N = _knob("SEQ_N", 100, 20)
SEQ_RUNS = _knob("SEQ_RUNS", 2, 1)
PRESENT = _knob("PRESENT", 200, 50)
RSS_RUNS = _knob("RSS_RUNS", 5, 3)
PODMAN_RUNS = _knob("PODMAN_RUNS", 10, 3)
PODMAN_CALLS = _knob("PODMAN_CALLS", 0, 0)
ONLY = set(os.environ.get("ONLY", "").split())
RESULTS = os.environ.get("RESULTS", os.path.join(REPO, "bench", "RESULTS.md"))
KEEP_JSON = os.environ.get("KEEP_JSON", "")
IMAGE = "localhost/bench-busybox:latest"

SCENARIOS = [  # name, label, unit
    ("run", "`run` of /bin/true", "ms"),
    ("cycle", "create + start + delete", "ms"),
    ("start", "`start` (created container)", "ms"),
    ("delete", "`delete --force` (stopped container)", "ms"),
    ("seq100", f"{SEQ_N} sequential `run`", "ms"),
    ("exec", "`exec true` (running container)", "ms"),
    ("kill", "`kill CONT` (running container)", "ms"),
    ("state", f"`state`, {PRESENT} others present", "ms"),
    ("list", f"`list` of {PRESENT + 1} containers", "ms"),
    ("rss-run", "peak RSS of `run`", "MiB"),
    ("rss-state", "peak RSS of `state`", "MiB"),
    ("podman", "`podman run --rm` end to end", "ms"),
]
# issue 7's targets, as the largest acceptable ratio pyoci/<runtime>
TARGETS = {
    "run": ("runc", 1.0), "cycle": ("runc", 1.0), "start": ("runc", 1.0),
    "state": ("runc", 1.0),
    "kill": ("runc", 1.0), "list": ("runc", 1.0), "rss-run": ("runc", 1.0),
    "podman": ("runc", 1.05),
}


def log(msg: str) -> None:
    print(f"compare: {msg}", file=sys.stderr, flush=True)


def sh(cmd: list[str], *, check: bool = True, env: dict | None = None,
       timeout: float | None = 300) -> subprocess.CompletedProcess:
    """Run cmd, output through files: a detached container keeps inherited pipes open."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                           timeout=timeout)
        out.seek(0)
        err.seek(0)
        res = subprocess.CompletedProcess(cmd, p.returncode, out.read().decode(errors="replace"),
                                          err.read().decode(errors="replace"))
    if check and res.returncode != 0:
        raise SystemExit(f"compare: failed (exit {res.returncode}): {shlex.join(cmd)}\n"
                         f"{res.stderr.strip()}")
    return res


def first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0].strip() if lines else "?"


class Runtime:
    """One runtime binary with a private state root; crun maybe in a private mount ns."""

    def __init__(self, name: str, binary: str, root: str) -> None:
        self.name, self.binary, self.root = name, binary, root
        self.ns_pid = 0  # nonzero: run in the mount namespace of this process

    def prefix(self) -> list[str]:
        return ["nsenter", "-t", str(self.ns_pid), "-m", "--"] if self.ns_pid else []

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "--root", self.root, *args]

    def call(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh(self.prefix() + self.argv(*args), check=check)

    def ids(self) -> list[str]:
        try:
            return sorted(e for e in os.listdir(self.root)
                          if os.path.isdir(os.path.join(self.root, e)) and not e.startswith("."))
        except FileNotFoundError:
            return []


class Bench:
    def __init__(self) -> None:
        self.work = tempfile.mkdtemp(prefix="pyoci-bench-", dir="/tmp")
        self.bundle = os.path.join(self.work, "bundle")
        self.sleeper = os.path.join(self.work, "sleeper")
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.results: dict[str, dict[str, dict]] = {}
        self.notes: list[str] = []
        self.holder: subprocess.Popen | None = None
        self.podman_dir = ""
        self.cgroup_parent = f"bench-{secrets.token_hex(4)}"
        self.runtimes: list[Runtime] = []
        self.json_dir = KEEP_JSON or os.path.join(self.work, "json")
        self.load_start = _loadavg()
        self.podman_env: dict | None = None
        self.call_lists: list[str] = []
        os.makedirs(self.json_dir, exist_ok=True)

    # --- set-up ----------------------------------------------------------------------

    def setup(self) -> None:
        pyoci = os.environ.get("PYOCI") or os.path.join(REPO, ".venv", "bin", "pyoci")
        wanted = [("pyoci", pyoci), ("runc", os.environ.get("RUNC") or "runc"),
                  ("crun", os.environ.get("CRUN") or "crun")]
        for name, binary in wanted:
            path = shutil.which(binary)
            if path is None:
                if name == "crun":
                    self.notes.append(f"crun not found ({binary}): no pyoci/crun ratios")
                    continue
                raise SystemExit(f"compare: {binary} not found (bash .ci/setup)")
            root = os.path.join(self.work, f"root-{name}")
            os.mkdir(root, 0o700)
            self.runtimes.append(Runtime(name, path, root))
        # Stale or missing bytecode would be recompiled on every timed run.
        venv_python = os.path.join(REPO, ".venv", "bin", "python")
        if os.access(venv_python, os.X_OK):
            sh([venv_python, "-m", "compileall", "-q", os.path.join(REPO, "pyoci")],
               check=False)
        make_bundle = os.path.join(REPO, ".ci", "make-bundle")
        sh([sys.executable, make_bundle, self.bundle])
        sh([self.rt("runc").binary, "spec", "--bundle", self.bundle])
        sh([sys.executable, make_bundle, self.bundle, "--config-only", "--args", "/bin/true"])
        # The sleeper shares the (read-only) rootfs.
        with open(os.path.join(self.bundle, "config.json")) as f:
            cfg = json.load(f)
        cfg["root"]["path"] = os.path.join(self.bundle, "rootfs")
        cfg["process"]["args"] = ["sleep", "1000000"]
        os.mkdir(self.sleeper)
        with open(os.path.join(self.sleeper, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        crun = self.rt("crun")
        if crun is not None and _hybrid():
            self._private_namespace(crun)
        for rt in self.runtimes:  # one plain run each: a broken runtime fails loudly here
            r = rt.call("run", "--bundle", self.bundle, "bench-check", check=False)
            if r.returncode != 0:
                raise SystemExit(f"compare: {rt.name} cannot run the bundle: {r.stderr.strip()}")

    def _private_namespace(self, crun: Runtime) -> None:
        """A mount namespace where /sys/fs/cgroup/unified is a scratch tmpfs, for crun."""
        script = ("mount -t tmpfs -o size=4m,mode=0755 bench-unified /sys/fs/cgroup/unified "
                  "&& echo ready && exec sleep 2147483647")
        self.holder = subprocess.Popen(["unshare", "-m", "--propagation", "private",
                                        "sh", "-c", script], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, text=True)
        assert self.holder.stdout is not None
        if self.holder.stdout.readline().strip() != "ready":
            raise SystemExit("compare: cannot make crun's private mount namespace")
        crun.ns_pid = self.holder.pid
        self.notes.append("crun ran in a private mount namespace with a tmpfs over "
                          "/sys/fs/cgroup/unified (crun 1.8 refuses hybrid hosts): it sees "
                          "a cgroup v1 host and skips the unified hierarchy")

    def rt(self, name: str) -> Runtime | None:
        return next((rt for rt in self.runtimes if rt.name == name), None)

    # --- measuring ---------------------------------------------------------------------

    def compare(self, scenario: str, commands: dict[Runtime, str], *, shell: bool = False,
                runs: int = RUNS, warmup: int = WARMUP, env: dict | None = None,
                prepare: dict[Runtime, str] | None = None) -> None:
        """Time ``commands`` (one per runtime) in interleaved rounds (see the docstring)
        and record each runtime's mean and standard deviation over all its runs."""
        rts = list(commands)
        rounds = max(1, min(ROUNDS, runs))
        times: dict[str, list[float]] = {rt.name: [] for rt in rts}
        for r in range(rounds):
            n = runs // rounds + (1 if r < runs % rounds else 0)
            for rt in rts[r % len(rts):] + rts[:r % len(rts)]:
                times[rt.name] += self.hyperfine(
                    f"{scenario}-{r}", rt, commands[rt], shell=shell, runs=n,
                    warmup=warmup if r == 0 else min(warmup, 1), env=env,
                    prepare=(prepare or {}).get(rt, ""))
        for rt in rts:
            t = times[rt.name]
            dev = statistics.stdev(t) if len(t) > 1 else 0.0
            self.record(scenario, rt.name, statistics.fmean(t) * 1000, dev * 1000, "ms",
                        len(t))

    def hyperfine(self, name: str, rt: Runtime, command: str, *, shell: bool, runs: int,
                  warmup: int, env: dict | None, prepare: str) -> list[float]:
        """One hyperfine of ``command`` for ``rt``: the times of its runs, in seconds."""
        out = os.path.join(self.json_dir, f"{name}-{rt.name}.json")
        cmd = [*rt.prefix(), "hyperfine", "--style", "none", "--runs", str(runs),
               "--warmup", str(warmup), "--export-json", out]
        if not shell:
            cmd.append("-N")
        if prepare:  # untimed, before every run; through sh whatever the timed shell
            cmd += ["--prepare", shlex.join(["sh", "-c", prepare])]
        cmd += ["--command-name", f"{rt.name} {name}", command]
        sh(cmd, env=env or self.env, timeout=None)
        with open(out) as f:
            return list(json.load(f)["results"][0]["times"])

    def record(self, scenario: str, name: str, mean: float, dev: float, unit: str,
               n: int) -> None:
        self.results.setdefault(scenario, {})[name] = {"mean": mean, "dev": dev, "n": n}
        log(f"{scenario:10s} {name:6s} {mean:9.1f} {unit} ± {dev:.1f}")

    def wanted(self, scenario: str) -> bool:
        return not ONLY or scenario in ONLY

    def run_all(self) -> None:
        b = self.bundle
        rts = self.runtimes
        if self.wanted("run"):
            self.compare("run", {rt: shlex.join(rt.argv("run", "--bundle", b, "bench-run"))
                                 for rt in rts})
        if self.wanted("cycle"):
            steps = (("create", "--bundle", b, "bench-cyc"), ("start", "bench-cyc"),
                     ("delete", "--force", "bench-cyc"))
            self.compare("cycle", {rt: " && ".join(shlex.join(rt.argv(*a)) for a in steps)
                                   for rt in rts}, shell=True)
        if self.wanted("start"):
            prep = {rt: f"{shlex.join(rt.argv('delete', '--force', 'bench-st'))} 2>/dev/null; "
                        f"{shlex.join(rt.argv('create', '--bundle', b, 'bench-st'))}"
                    for rt in rts}
            self.compare("start", {rt: shlex.join(rt.argv("start", "bench-st")) for rt in rts},
                         prepare=prep)
        if self.wanted("delete"):
            # /bin/true has exited once `run` returns: the container is stopped.
            prep = {rt: shlex.join(rt.argv("run", "--detach", "--bundle", b, "bench-del"))
                    + " && sleep 0.05" for rt in rts}
            self.compare("delete", {rt: shlex.join(rt.argv("delete", "--force", "bench-del"))
                                    for rt in rts}, prepare=prep)
        if self.wanted("seq100"):
            loops = {}
            for rt in rts:
                one = shlex.join(rt.argv("run", "--bundle", b, "bench-seq"))
                loops[rt] = f"for i in $(seq {SEQ_N}); do {one} </dev/null || exit 1; done"
            self.compare("seq100", loops, shell=True, runs=SEQ_RUNS, warmup=0)
        if self.wanted("rss-run"):
            for rt in self.runtimes:
                self.rss("rss-run", rt, rt.argv("run", "--bundle", b, "bench-rss"))
        if any(self.wanted(s) for s in ("exec", "kill", "state", "list", "rss-state")):
            self.populated()
        if self.wanted("podman"):
            self.podman()

    def rss(self, scenario: str, rt: Runtime, argv: list[str]) -> None:
        if not os.access("/usr/bin/time", os.X_OK):
            self.notes.append("/usr/bin/time missing (apt-get install time): no RSS rows")
            return
        out = os.path.join(self.work, "rss")
        kib = []
        for _ in range(RSS_RUNS):
            sh([*rt.prefix(), "/usr/bin/time", "-f", "%M", "-o", out, *argv], env=self.env)
            with open(out) as f:
                kib.append(int(f.read().split()[-1]))
        mib = [k / 1024 for k in kib]
        self.record(scenario, rt.name, statistics.median(mib), max(mib) - min(mib), "MiB",
                    RSS_RUNS)

    def populated(self) -> None:
        """exec, kill, state, list: one running container and PRESENT stopped ones."""
        for rt in self.runtimes:
            rt.call("run", "--detach", "--bundle", self.sleeper, "bench-live")
            rt.call("exec", "bench-live", "true")
            rt.call("kill", "bench-live", "CONT")
        log(f"making {PRESENT} stopped containers per runtime")
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            jobs = [pool.submit(rt.call, "run", "--detach", "--bundle", self.bundle,
                                f"bench-p{i:03d}")
                    for rt in self.runtimes for i in range(PRESENT)]
            for job in jobs:
                job.result()
        live = "bench-live"
        for scenario, args in (("exec", ("exec", live, "true")), ("kill", ("kill", live, "CONT")),
                               ("state", ("state", live)), ("list", ("list",))):
            if self.wanted(scenario):
                self.compare(scenario, {rt: shlex.join(rt.argv(*args)) for rt in self.runtimes})
        if self.wanted("rss-state"):
            for rt in self.runtimes:
                self.rss("rss-state", rt, rt.argv("state", live))
        self.delete_all()

    def delete_all(self) -> None:
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            jobs = [pool.submit(rt.call, "delete", "--force", cid, check=False)
                    for rt in self.runtimes for cid in rt.ids()]
            for job in jobs:
                job.result()

    # --- podman --------------------------------------------------------------------------

    def podman(self) -> None:
        if not shutil.which("podman") or not shutil.which("conmon"):
            self.notes.append("podman/conmon not installed: no podman row")
            log("podman or conmon not installed: podman skipped")
            return
        d = self.podman_dir = os.path.join(self.work, "podman")
        os.makedirs(os.path.join(d, "net"))
        wrappers = {}
        for rt in self.runtimes:  # the harness's way: --root first, the rest from podman
            w = wrappers[rt.name] = os.path.join(d, f"runtime-{rt.name}")
            with open(w, "w") as f:
                f.write(f"#!/bin/sh\nexec {shlex.quote(rt.binary)} --root "
                        f"{shlex.quote(rt.root)} \"$@\"\n")
            os.chmod(w, 0o755)
        conf, storage = os.path.join(d, "containers.conf"), os.path.join(d, "storage.conf")
        import resource

        nproc = min(4096, resource.getrlimit(resource.RLIMIT_NPROC)[1])
        runtimes = "\n".join(f'{n} = ["{w}"]' for n, w in wrappers.items())
        with open(conf, "w") as f:
            f.write(f"""\
[containers]
netns = "none"
cgroupns = "host"
default_ulimits = ["nofile=1024:1024", "nproc={nproc}:{nproc}"]
log_driver = "k8s-file"

[network]
network_config_dir = "{d}/net"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{d}/events.log"
runtime = "runc"
runtime_supports_json = ["crun", "runc", "pyoci"]
tmp_dir = "{d}/tmp"
static_dir = "{d}/storage/libpod"
volume_path = "{d}/storage/volumes"
lock_type = "file"

[engine.runtimes]
{runtimes}
""")
        with open(storage, "w") as f:
            f.write(f'[storage]\ndriver = "vfs"\ngraphroot = "{d}/storage"\n'
                    f'runroot = "{d}/run"\n')
        env = dict(self.env, CONTAINERS_CONF=conf, CONTAINERS_STORAGE_CONF=storage)
        env.pop("CONTAINER_HOST", None)
        env.pop("CONTAINER_CONNECTION", None)
        self.podman_env = env
        tar = os.path.join(d, "rootfs.tar")
        with tarfile.open(tar, "w") as t:
            t.add(os.path.join(self.bundle, "rootfs"), arcname=".")
        sh(["podman", "import", "--change", 'CMD=["sh"]', tar, IMAGE], env=env)
        commands = {}
        for rt in self.runtimes:
            argv = ["podman", "--runtime", rt.name, "run", "--rm",
                    f"--cgroup-parent=/{self.cgroup_parent}", IMAGE, "true"]
            r = sh([*rt.prefix(), *argv], env=env, check=False)
            if r.returncode != 0:
                self.notes.append(f"podman with {rt.name} failed: {r.stderr.strip()[-300:]}")
                log(f"podman with {rt.name} failed: no podman row for it")
                continue
            commands[rt] = shlex.join(argv)
        if commands:
            self.compare("podman", commands, runs=PODMAN_RUNS, warmup=min(WARMUP, 2),
                         env=env)
        if PODMAN_CALLS > 0:
            self.podman_calls(wrappers, env)

    def podman_calls(self, wrappers: dict[str, str], env: dict) -> None:
        """PODMAN_CALLS (see the docstring): each runtime call podman and conmon make during
        `podman run --rm`, in order, with its median duration and whether it ran Python."""
        d = self.podman_dir
        calls_log = os.path.join(d, "calls.log")
        traces = os.path.join(d, "traces")
        os.makedirs(traces, exist_ok=True)
        rts = [rt for rt in self.runtimes if rt.name in wrappers]
        rounds: dict[str, list[tuple[float, list]]] = {rt.name: [] for rt in rts}
        traced: dict[str, list[tuple[str, str]]] = {}

        def podman_run(rt: Runtime) -> tuple[float, list[list[str]]]:
            with open(calls_log, "w"):
                pass
            argv = ["podman", "--runtime", rt.name, "run", "--rm",
                    f"--cgroup-parent=/{self.cgroup_parent}", IMAGE, "true"]
            t0 = time.monotonic()
            r = sh([*rt.prefix(), *argv], env=env, check=False)
            total = (time.monotonic() - t0) * 1000
            if r.returncode != 0:
                log(f"podman calls with {rt.name}: failed: {r.stderr.strip()[-300:]}")
            with open(calls_log) as f:
                return total, [line.rstrip("\n").split("\t") for line in f]

        try:
            for rt in rts:  # a logging wrapper: start, end, exit status, argv of each call
                run_rt = f"{shlex.quote(rt.binary)} --root {shlex.quote(rt.root)} \"$@\""
                with open(wrappers[rt.name], "w") as f:
                    f.write(f"#!/bin/bash\ns=$EPOCHREALTIME\n{run_rt}\nrc=$?\n"
                            "printf '%s\\t%s\\t%s\\t%s\\n' "
                            "\"$s\" \"$EPOCHREALTIME\" \"$rc\" \"$*\" "
                            f">> {shlex.quote(calls_log)}\nexit $rc\n")
            for _ in range(PODMAN_CALLS):
                for rt in rts:
                    rounds[rt.name].append(podman_run(rt))
            for rt in rts if shutil.which("strace") else []:  # traced: trace file, argv
                with open(wrappers[rt.name], "w") as f:
                    f.write(f"#!/bin/sh\nt=$(mktemp -p {shlex.quote(traces)})\n"
                            f"printf '%s\\t%s\\n' \"$t\" \"$*\" >> {shlex.quote(calls_log)}\n"
                            f"exec strace -qq -e trace=execve -o \"$t\" {shlex.quote(rt.binary)} "
                            f"--root {shlex.quote(rt.root)} \"$@\"\n")
                traced[rt.name] = []
                for trace, args in podman_run(rt)[1]:
                    with open(trace) as f:
                        execs = [line for line in f if "execve(" in line and "= 0" in line]
                    traced[rt.name].append((args, "python" if len(execs) > 1 else "native"))
        finally:
            for rt in rts:  # the plain wrapper again
                with open(wrappers[rt.name], "w") as f:
                    f.write(f"#!/bin/sh\nexec {shlex.quote(rt.binary)} --root "
                            f"{shlex.quote(rt.root)} \"$@\"\n")

        def shape(args: str) -> str:
            return re.sub(r"[0-9a-f]{64}", "ID", args.replace(d, "$P"))

        for rt in rts:
            done = [calls for _, calls in rounds[rt.name]]
            n = max((len(c) for c in done), default=0)
            total = statistics.median(t for t, _ in rounds[rt.name])
            lines = [f"podman run --rm with {rt.name}: {n} runtime calls; median of "
                     f"{len(done)} rounds, podman {total:.1f} ms in all"]
            kinds = dict((shape(a), k) for a, k in traced.get(rt.name, []))
            for i in range(n):
                got = [c[i] for c in done if len(c) > i]
                args = shape(got[0][3])
                ms = statistics.median((float(c[1]) - float(c[0])) * 1000 for c in got)
                bad = sum(c[2] != "0" for c in got)
                lines.append(f"  {ms:7.1f} ms  {kinds.get(args, '?'):6s}  {args}"
                             + (f"  (failed {bad}x)" if bad else ""))
            for line in lines:
                log(line)
            self.call_lists += lines

    def podman_cleanup(self) -> None:
        if not self.podman_dir:
            return
        env = self.podman_env
        if env is not None:
            sh(["podman", "rm", "-a", "-f", "-t", "0"], env=env, check=False, timeout=120)
            sh(["podman", "rmi", "-a", "-f"], env=env, check=False, timeout=120)
        # conmon daemonizes: ours are those naming our private directory
        for pid in _processes_mentioning(self.podman_dir):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for mp in sorted(_mounts_under(self.podman_dir), key=len, reverse=True):
            sh(["umount", "-l", mp], check=False)

    def remove_cgroup_parent(self) -> None:
        for hier in sorted(os.listdir("/sys/fs/cgroup")):
            top = os.path.join("/sys/fs/cgroup", hier, self.cgroup_parent)
            if not os.path.isdir(top):
                continue
            dirs = [p for p, _, _ in os.walk(top)]
            for p in sorted(dirs, key=lambda p: p.count("/"), reverse=True):
                for _ in range(50):
                    try:
                        os.rmdir(p)
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        time.sleep(0.1)

    # --- clean-up ------------------------------------------------------------------------

    def cleanup(self) -> None:
        try:
            self.podman_cleanup()
            self.delete_all()
        finally:
            if self.holder is not None:
                self.holder.kill()
                self.holder.wait()
            self.remove_cgroup_parent()
            if _mounts_under(self.work):
                log(f"left {self.work} behind: something is still mounted under it")
            else:
                sh(["rm", "-rf", "--one-file-system", self.work], check=False)

    # --- report --------------------------------------------------------------------------

    def table(self) -> list[list[str]]:
        names = [rt.name for rt in self.runtimes]
        head = ["scenario", *names]
        if "runc" in names:
            head.append("pyoci/runc")
        if "crun" in names:
            head.append("pyoci/crun")
        head.append("target")
        rows = [head]
        for key, label, unit in SCENARIOS:
            res = self.results.get(key)
            if not res:
                continue
            row = [label]
            for n in names:
                r = res.get(n)
                row.append(f"{r['mean']:.1f} {unit}" if r else "-")
            for other in ("runc", "crun"):
                if other in names:
                    row.append(_ratio(res, other))
            target = TARGETS.get(key)
            if target and target[0] in res and "pyoci" in res:
                got = res["pyoci"]["mean"] / res[target[0]]["mean"]
                verdict = "met" if got <= target[1] else "not met"
                row.append(f"≤ {target[1]:.2f}x {target[0]}: {verdict}")
            else:
                row.append("")
            rows.append(row)
        return rows

    def machine(self) -> list[tuple[str, str]]:
        cpu = "?"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
        head = sh(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], check=False).stdout
        dirty = sh(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no",
                    "pyoci"], check=False).stdout.strip()
        pyoci = self.rt("pyoci")
        rows = [
            ("CPU", f"{cpu}, {os.cpu_count()} CPUs (nproc {first_line(['nproc'])})"),
            ("memory", f"{mem} MiB"),
            ("kernel", platform.release()),
            ("cgroups", _cgroup_mode()),
            ("load average", f"{self.load_start} at the start, {_loadavg()} at the end"),
            ("pyoci", f"{head.strip()}{' (pyoci/ modified)' if dirty else ''}, "
                      + first_line([pyoci.binary, "--version"]) if pyoci else "?"),
            ("python", first_line([os.path.join(REPO, ".venv", "bin", "python"), "-VV"])),
        ]
        for rt in self.runtimes:
            if rt.name != "pyoci":
                rows.append((rt.name, first_line([rt.binary, "--version"])))
        for tool, args in (("podman", ["--version"]), ("conmon", ["--version"]),
                           ("hyperfine", ["--version"])):
            if shutil.which(tool):
                rows.append((tool, first_line([tool, *args])))
        return rows

    def report(self, started: str, elapsed: float) -> None:
        rows = self.table()
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        print()
        for r in rows:
            print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                            for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip())
        for n in self.notes:
            print(f"note: {n}")
        if not RESULTS:
            return
        md = ["# Benchmark results", "",
              "Regenerated by `bash bench/compare.sh` (see `bench/README.md`); do not edit by "
              "hand.", "",
              f"Run {started} UTC, {elapsed / 60:.1f} minutes; hyperfine, {RUNS} runs in "
              f"{ROUNDS} interleaved rounds after {WARMUP} warm-up runs (`seq100`: "
              f"{SEQ_RUNS} runs; RSS: median of {RSS_RUNS}; "
              f"podman: {PODMAN_RUNS} runs){' (QUICK=1)' if QUICK else ''}.", "",
              "| " + " | ".join(rows[0]) + " |",
              "|" + "|".join(" --- " if i == 0 else " ---: " for i in range(len(rows[0]))) + "|"]
        md += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        md += ["", "Mean ± standard deviation (RSS: median, ± half the range):", ""]
        for key, label, unit in SCENARIOS:
            res = self.results.get(key)
            if res:
                md.append(f"- {label}: " + ", ".join(
                    f"{n} {r['mean']:.1f} ± {r['dev']:.1f} {unit}" for n, r in res.items()))
        md += ["", "## Machine", "", "| | |", "| --- | --- |"]
        md += [f"| {k} | {v} |" for k, v in self.machine()]
        if self.call_lists:
            md += ["", "## podman's runtime calls (PODMAN_CALLS)", "", "```"]
            md += [*self.call_lists, "```"]
        if self.notes:
            md += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        with open(RESULTS, "w") as f:
            f.write("\n".join(md) + "\n")
        log(f"wrote {RESULTS}")


def _ratio(res: dict, other: str) -> str:
    if "pyoci" not in res or other not in res or not res[other]["mean"]:
        return "-"
    return f"{res['pyoci']['mean'] / res[other]['mean']:.2f}x"


def _mountinfo() -> list[tuple[str, str]]:
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            out.append((left.split()[4].replace("\\040", " "), right.split()[0]))
    return out


def _fstype(path: str) -> str:
    types = [t for mp, t in _mountinfo() if mp == path]
    return types[-1] if types else ""


def _hybrid() -> bool:
    return _fstype("/sys/fs/cgroup") == "tmpfs" and _fstype("/sys/fs/cgroup/unified") == "cgroup2"


def _cgroup_mode() -> str:
    top = _fstype("/sys/fs/cgroup")
    if top == "cgroup2":
        return "unified (cgroup v2)"
    return "hybrid (v1 + cgroup2 at /sys/fs/cgroup/unified)" if _hybrid() else "legacy (v1)"


def _mounts_under(path: str) -> list[str]:
    return [mp for mp, _ in _mountinfo() if mp == path or mp.startswith(path + "/")]


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    pids.append(int(name))
        except OSError:
            continue
    return pids


def _loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main() -> None:
    if os.geteuid() != 0:
        raise SystemExit("compare: must run as root")
    for tool in ("hyperfine", "unshare", "nsenter"):
        if not shutil.which(tool):
            raise SystemExit(f"compare: {tool} not found (bash .ci/setup)")
    unknown = ONLY - {s[0] for s in SCENARIOS}
    if unknown:
        raise SystemExit(f"compare: unknown scenario(s) in ONLY: {' '.join(sorted(unknown))}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M")
    t0 = time.monotonic()
    bench = Bench()
    try:
        bench.setup()
        bench.run_all()
    finally:
        bench.cleanup()
    bench.report(started, time.monotonic() - t0)


if __name__ == "__main__":
    main()
