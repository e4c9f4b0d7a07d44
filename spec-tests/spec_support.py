"""Helpers for the conformance suite: drive the runtime like a caller and observe the result.

Everything here goes through the ``pyoci`` fixture (the CLI), never through pyoci's
Python API: the suite checks the runtime as a runtime caller sees it.

``Box``            a host directory shared read-write with the container at ``/spec-out``
``run_script``     create, start, wait until stopped and delete a ``sh -c`` container
``HOOK_RECORDER``  ``hook-recorder.sh``, the hook used by the hook tests (see its header)
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import sys
import time

import pytest

HERE = pathlib.Path(__file__).resolve().parent
SCHEMA_DIR = HERE / "schema"
HOOK_RECORDER = str(HERE / "hook-recorder.sh")
ROOTFS_MARKER = ".spec-rootfs-marker"
BOX_DEST = "/spec-out"
WAIT_SECONDS = 20.0

_shared = sys.modules["pyoci_tests_conftest"]  # tests/conftest.py, loaded by our conftest
base_config = _shared.base_config
write_config = _shared.write_config
RUNTIME: list[str] = list(_shared.RUNTIME)


# ---------------------------------------------------------------------------------------
# the operations, as a caller runs them


def create(pyoci, bundle: str, cid: str, *extra: str) -> None:
    r = pyoci("create", "--bundle", bundle, *extra, cid)
    assert r.returncode == 0, f"create {cid} failed ({r.returncode}): {r.stderr.strip()}"


def start(pyoci, cid: str) -> None:
    r = pyoci("start", cid)
    assert r.returncode == 0, f"start {cid} failed ({r.returncode}): {r.stderr.strip()}"


def delete(pyoci, cid: str) -> None:
    r = pyoci("delete", cid)
    assert r.returncode == 0, f"delete {cid} failed ({r.returncode}): {r.stderr.strip()}"


def kill(pyoci, cid: str, signal: str = "KILL") -> None:
    r = pyoci("kill", cid, signal)
    assert r.returncode == 0, f"kill {cid} {signal} failed ({r.returncode}): {r.stderr.strip()}"


def state(pyoci, cid: str) -> dict:
    r = pyoci("state", cid)
    assert r.returncode == 0, f"state {cid} failed ({r.returncode}): {r.stderr.strip()}"
    return json.loads(r.stdout)


def try_state(pyoci, cid: str) -> dict | None:
    """The state, or None when the runtime reports an error (no such container)."""
    r = pyoci("state", cid)
    if r.returncode != 0:
        return None
    return json.loads(r.stdout)


def wait_status(pyoci, cid: str, wanted: str = "stopped", timeout: float = WAIT_SECONDS) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        s = state(pyoci, cid)
        if s["status"] == wanted:
            return s
        if time.monotonic() > deadline:
            pytest.fail(f"container {cid} still {s['status']!r} after {timeout}s, "
                        f"wanted {wanted!r}")
        time.sleep(0.05)


def wait_for(predicate, what: str, timeout: float = WAIT_SECONDS):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def assert_error(result, what: str) -> None:
    """The operation generated an error: a non-zero exit (runc's CLI convention)."""
    assert result.returncode != 0, (f"{what}: expected an error, got exit 0\n"
                                    f"stdout: {result.stdout}\nstderr: {result.stderr}")


def assert_no_container(pyoci, cid: str) -> None:
    """The runtime knows no container ``cid`` (state errors) and keeps no state for it."""
    r = pyoci("state", cid)
    assert r.returncode != 0, f"container {cid} exists: {r.stdout}"
    assert not os.path.exists(os.path.join(pyoci.root, cid)), \
        f"state directory {pyoci.root}/{cid} left behind"


# ---------------------------------------------------------------------------------------
# the state schema


def state_validator():
    import jsonschema
    from referencing import Registry
    from referencing.jsonschema import DRAFT4

    registry = Registry().with_resources(
        (p.as_uri(), DRAFT4.create_resource(json.loads(p.read_text())))
        for p in SCHEMA_DIR.glob("*.json"))
    path = SCHEMA_DIR / "state-schema.json"
    schema = {**json.loads(path.read_text()), "id": path.as_uri()}
    return jsonschema.Draft4Validator(schema, registry=registry)


def schema_errors(doc: dict) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in state_validator().iter_errors(doc)]


# ---------------------------------------------------------------------------------------
# processes, namespaces and mounts, seen from the host


def proc_start_time(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def proc_alive(pid: int, start_time: int | None = None) -> bool:
    now = proc_start_time(pid)
    return now is not None and (start_time is None or now == start_time)


def ns_of(pid: int | str, kind: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def mountinfo(pid: int | str = "self") -> list[dict]:
    """Parsed /proc/PID/mountinfo: mount point, per-mount options, optional fields, ..."""
    with open(f"/proc/{pid}/mountinfo") as f:
        return parse_mountinfo(f.read())


def parse_mountinfo(text: str) -> list[dict]:
    """Parse mountinfo text (the host's, or a copy taken inside the container)."""
    out = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        out.append({
            "id": fields[0], "parent": fields[1], "root": _unescape(fields[3]),
            "mountpoint": _unescape(fields[4]), "options": fields[5].split(","),
            "optional": fields[6:sep], "fstype": fields[sep + 1],
            "source": fields[sep + 2], "super": fields[sep + 3].split(","),
        })
    return out


def _unescape(s: str) -> str:
    return (s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")
            .replace("\\134", "\\"))


def mount_at(mounts: list[dict], mountpoint: str) -> dict | None:
    """The top-most mount at ``mountpoint`` (the last one listed)."""
    found = None
    for m in mounts:
        if m["mountpoint"] == mountpoint:
            found = m
    return found


# ---------------------------------------------------------------------------------------
# a directory shared with the container, and containers that run a script


class Box:
    """``BUNDLE/spec-out`` on the host, bind-mounted read-write at ``/spec-out`` inside."""

    def __init__(self, bundle: str) -> None:
        self.host = os.path.join(bundle, "spec-out")
        os.makedirs(self.host, exist_ok=True)
        os.chmod(self.host, 0o777)
        os.makedirs(os.path.join(bundle, "rootfs", BOX_DEST.lstrip("/")), exist_ok=True)

    @staticmethod
    def mount() -> dict:
        return {"destination": BOX_DEST, "type": "bind", "source": "spec-out",
                "options": ["rbind", "rw"]}

    def add_to(self, cfg: dict) -> dict:
        cfg.setdefault("mounts", []).append(self.mount())
        return cfg

    def path(self, name: str) -> str:
        return os.path.join(self.host, name)

    def exists(self, name: str) -> bool:
        return os.path.exists(self.path(name))

    def read(self, name: str) -> str | None:
        try:
            with open(self.path(name)) as f:
                return f.read()
        except FileNotFoundError:
            return None

    def wait(self, name: str, timeout: float = WAIT_SECONDS) -> str:
        wait_for(lambda: self.exists(name), f"{self.path(name)}", timeout)
        return self.read(name) or ""


def script_config(script: str, box: Box | None = None, cfg: dict | None = None) -> dict:
    """``cfg`` (default: base_config) running ``sh -c SCRIPT``, its output in the box."""
    cfg = cfg if cfg is not None else base_config()
    if box is not None:
        script = f"exec >{BOX_DEST}/stdout 2>{BOX_DEST}/stderr\n{script}"
        box.add_to(cfg)
    cfg["process"]["args"] = ["sh", "-c", script]
    return cfg


def run_script(pyoci, bundle: str, cid: str, script: str, mutate=None) -> Box:
    """Run ``sh -c SCRIPT`` through create, start, (wait for stopped) and delete.

    ``mutate(cfg)`` may edit the config first.  The script's stdout and stderr are in the
    returned box as ``stdout`` and ``stderr``; anything it writes under /spec-out too.
    """
    box = Box(bundle)
    cfg = script_config(script, box)
    if mutate is not None:
        mutate(cfg)
    write_config(bundle, cfg)
    create(pyoci, bundle, cid)
    start(pyoci, cid)
    wait_status(pyoci, cid, "stopped")
    delete(pyoci, cid)
    return box


def output(box: Box) -> str:
    out = box.read("stdout")
    assert out is not None, f"the container wrote no output; stderr: {box.read('stderr')}"
    return out


# ---------------------------------------------------------------------------------------
# hooks


def recorder_hook(name: str, outdir: str, *, exit_code: int = 0, sleep: float = 0,
                  path: str | None = None, timeout: int | None = None) -> dict:
    """A hook entry running hook-recorder.sh (see its header) as NAME into OUTDIR."""
    hook = {"path": path or HOOK_RECORDER,
            "args": ["hook-recorder", name, outdir, str(exit_code), str(sleep)],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    f"SPEC_HOOK_NAME={name}"]}
    if timeout is not None:
        hook["timeout"] = timeout
    return hook


def install_recorder_in_rootfs(bundle: str, inner: str = "/spec-hook-recorder") -> str:
    """Copy the recorder into the rootfs (for hooks whose path resolves in the container)."""
    dst = os.path.join(bundle, "rootfs", inner.lstrip("/"))
    shutil.copy(HOOK_RECORDER, dst)
    os.chmod(dst, 0o755)
    return inner


def mark_rootfs(bundle: str) -> None:
    """Put a marker file at the rootfs's top, to tell from inside whether / is the rootfs."""
    with open(os.path.join(bundle, "rootfs", ROOTFS_MARKER), "w") as f:
        f.write("rootfs\n")


class HookLog:
    """What hook-recorder.sh wrote into a host directory (a Box's, or a path)."""

    def __init__(self, where: Box | str) -> None:
        self.dir = where.host if isinstance(where, Box) else where
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o777)

    def _read(self, name: str) -> str | None:
        try:
            with open(os.path.join(self.dir, name)) as f:
                return f.read()
        except FileNotFoundError:
            return None

    def order(self) -> list[str]:
        return (self._read("order") or "").split()

    def ran(self, name: str) -> bool:
        return name in self.order()

    def state(self, name: str) -> dict:
        text = self._read(f"{name}.state")
        assert text is not None, f"hook {name} did not run"
        return json.loads(text)

    def raw_state(self, name: str) -> str | None:
        return self._read(f"{name}.state")

    def ns(self, name: str) -> dict[str, str]:
        text = self._read(f"{name}.ns")
        assert text is not None, f"hook {name} did not run"
        return dict(line.split(" ", 1) for line in text.splitlines() if " " in line)

    def fact(self, name: str, key: str) -> str | None:
        text = self._read(f"{name}.{key}")
        return None if text is None else text.strip()


def hook_for(kind: str, bundle: str, box: Box, name: str | None = None, **kw) -> dict:
    """A recorder hook of type ``kind`` logging into ``box`` (see :class:`HookLog`).

    startContainer hooks resolve their path and run in the container, after pivot_root:
    they get a copy of the recorder inside the rootfs and write to /spec-out.  All other
    hooks run the recorder from this directory and write to the box's host directory.
    """
    if kind == "startContainer":
        path, outdir = install_recorder_in_rootfs(bundle), BOX_DEST
    else:
        path, outdir = HOOK_RECORDER, box.host
    return recorder_hook(name or kind, outdir, path=path, **kw)


HOOK_TYPES = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
              "poststop"]
CREATE_HOOKS = ["prestart", "createRuntime", "createContainer"]
START_HOOKS = ["startContainer", "poststart"]
RUNTIME_NS_HOOKS = ["prestart", "createRuntime", "poststart", "poststop"]
CONTAINER_NS_HOOKS = ["createContainer", "startContainer"]
