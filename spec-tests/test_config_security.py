"""config.md and config-linux.md: the security properties.

https://github.com/opencontainers/runtime-spec/blob/v1.3.0/config.md#linux-process
https://github.com/opencontainers/runtime-spec/blob/v1.3.0/config-linux.md

Capabilities, noNewPrivileges, seccomp (errnoRet, defaultErrnoRet, listenerPath),
user namespace mappings, maskedPaths and readonlyPaths, and the LSM labels on a host
without an LSM.  (idmap / ridmap mounts are in test_config_linux_mount_options.py.)
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading

import pytest
from spec_support import (
    assert_error,
    assert_no_container,
    create,
    delete,
    output,
    run_script,
    start,
    wait_status,
    write_config,
)
from spec_support import base_config as _base_config

STATUS = "grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status"


def _status(text: str) -> dict[str, str]:
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def _own_bounding() -> int:
    with open("/proc/self/status") as f:
        return int(_status(f.read())["CapBnd"], 16)


# --- capabilities ----------------------------------------------------------------------


def test_capabilities_are_the_configured_sets(pyoci, bundle, cid):
    """Linux Process, capabilities: the sets are applied (bounding, permitted, effective
    for root; inheritable and ambient as configured)."""
    caps = ["CAP_CHOWN", "CAP_KILL"]

    def edit(cfg):
        cfg["process"]["capabilities"] = {"bounding": caps, "effective": caps,
                                          "permitted": caps, "inheritable": ["CAP_KILL"],
                                          "ambient": ["CAP_KILL"]}

    st = _status(output(run_script(pyoci, bundle, cid, STATUS, mutate=edit)))
    assert int(st["CapBnd"], 16) == (1 << 0) | (1 << 5)
    assert int(st["CapEff"], 16) == (1 << 0) | (1 << 5)
    assert int(st["CapInh"], 16) == 1 << 5
    assert int(st["CapAmb"], 16) == 1 << 5


def test_capability_that_cannot_be_granted_is_a_warning(pyoci, bundle, cid):
    """Linux Process, capabilities: "Any value which cannot be mapped to a relevant kernel
    interface, or cannot be granted otherwise MUST be logged as a warning by the runtime.
    Runtimes SHOULD NOT fail if the container configuration requests capabilities that
    cannot be granted" (here: a capability outside the runtime's own bounding set)."""
    own = _own_bounding()
    missing = next((i for i in range(41) if not own >> i & 1), None)
    if missing is None:
        pytest.skip("the runtime holds every capability: none cannot be granted")
    from pyoci.capabilities import CAPABILITIES

    name = CAPABILITIES[missing]
    cfg = _base_config(["true"])
    for key in ("bounding", "effective", "permitted"):
        cfg["process"]["capabilities"][key].append(name)
    write_config(bundle, cfg)
    r = pyoci("create", "--bundle", bundle, cid)
    assert r.returncode == 0, r.stderr
    assert name in r.stderr and "warn" in r.stderr.lower(), r.stderr
    start(pyoci, cid)
    wait_status(pyoci, cid, "stopped")
    delete(pyoci, cid)


@pytest.mark.parametrize("nnp", [True, False])
def test_no_new_privileges(pyoci, bundle, cid, nnp):
    """Linux Process, noNewPrivileges: "setting noNewPrivileges to true prevents the
    process from gaining additional privileges" (the no_new_privs bit)."""
    def edit(cfg):
        cfg["process"]["noNewPrivileges"] = nnp

    st = _status(output(run_script(pyoci, bundle, cid, STATUS, mutate=edit)))
    assert st["NoNewPrivs"] == ("1" if nnp else "0")


# --- seccomp ---------------------------------------------------------------------------


def _seccomp(cfg, rules, **extra):
    cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules, **extra}


def test_seccomp_errno_ret_defaults_to_eperm(pyoci, bundle, cid):
    """Seccomp, errnoRet: "If not specified then its default value is EPERM"."""
    def edit(cfg):
        _seccomp(cfg, [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}])

    out = output(run_script(pyoci, bundle, cid, "mkdir /tmp/x 2>&1; true", mutate=edit))
    assert "Operation not permitted" in out


def test_seccomp_errno_ret_is_returned(pyoci, bundle, cid):
    """Seccomp, errnoRet: "the errno return code to use" with SCMP_ACT_ERRNO."""
    def edit(cfg):
        _seccomp(cfg, [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                        "errnoRet": 18}])

    out = output(run_script(pyoci, bundle, cid, "mkdir /tmp/x 2>&1; true", mutate=edit))
    assert os.strerror(18) in out


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG",
                                    "SCMP_ACT_TRAP"])
def test_seccomp_errno_ret_with_an_action_without_errno_is_an_error(pyoci, bundle, cid,
                                                                     action):
    """Seccomp, errnoRet: "When the action doesn't support an errno, the runtime MUST
    print and error and fail"."""
    cfg = _base_config(["true"])
    _seccomp(cfg, [{"names": ["mkdir"], "action": action, "errnoRet": 5}],
             defaultAction="SCMP_ACT_ERRNO")
    write_config(bundle, cfg)
    assert_error(pyoci("create", "--bundle", bundle, cid), f"errnoRet with {action}")
    assert_no_container(pyoci, cid)


def test_seccomp_default_errno_ret_with_an_action_without_errno_is_an_error(pyoci, bundle,
                                                                             cid):
    """Seccomp, defaultErrnoRet: "When the action doesn't support an errno, the runtime
    MUST print and error and fail"."""
    cfg = _base_config(["true"])
    _seccomp(cfg, [], defaultErrnoRet=5)
    write_config(bundle, cfg)
    assert_error(pyoci("create", "--bundle", bundle, cid), "defaultErrnoRet with ALLOW")
    assert_no_container(pyoci, cid)


class _Listener:
    """An AF_UNIX SOCK_STREAM listener recording each connection: its data, fds, and
    whether the runtime closed it."""

    def __init__(self, close_at_once: bool = False) -> None:
        self.dir = tempfile.mkdtemp(prefix="pyoci-test-spec-listener-", dir="/tmp")
        self.path = os.path.join(self.dir, "l.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(4)
        self.sock.settimeout(30)
        self.close_at_once = close_at_once
        self.conns: list[dict] = []
        self._t = threading.Thread(target=self._serve, daemon=True)
        self._t.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        rec = {"data": b"", "fds": [], "closed": False}
        self.conns.append(rec)
        with conn:
            if self.close_at_once:
                return
            conn.settimeout(30)
            while True:
                try:
                    data, fds, _, _ = socket.recv_fds(conn, 65536, 4)
                except OSError:
                    return
                rec["fds"] += fds
                if not data:
                    rec["closed"] = True
                    return
                rec["data"] += data

    def close(self) -> None:
        self._t.join(30)
        self.sock.close()
        for rec in self.conns:
            for fd in rec["fds"]:
                os.close(fd)
        os.unlink(self.path)
        os.rmdir(self.dir)


def test_seccomp_listener_gets_one_state_then_eof(pyoci, bundle, cid):
    """Seccomp, listenerPath: "The runtime MUST send exactly one container process state
    per connection. The connection MUST NOT be reused and it MUST be closed after sending
    a seccomp state"; the seccomp fd comes with it (SCM_RIGHTS, named in "fds")."""
    listener = _Listener()
    try:
        def edit(cfg):
            _seccomp(cfg, [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
                     listenerPath=listener.path, listenerMetadata="spec")
        # the listener never answers: the program must not call mkdir
        run_script(pyoci, bundle, cid, "true", mutate=edit)
    finally:
        listener.close()
    assert len(listener.conns) == 1
    rec = listener.conns[0]
    assert rec["closed"], "the runtime did not close the connection"
    doc = json.loads(rec["data"])  # exactly one JSON document
    assert doc["fds"] == ["seccompFd"] and len(rec["fds"]) == 1
    assert doc["metadata"] == "spec" and doc["state"]["id"] == cid


def test_seccomp_listener_send_failure_is_an_error(pyoci, bundle, cid):
    """Seccomp, listenerPath: "If sending to this socket fails, the runtime MUST generate
    an error" (here the listener is gone)."""
    cfg = _base_config(["true"])
    _seccomp(cfg, [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}],
             listenerPath="/tmp/pyoci-spec-no-listener.sock")
    write_config(bundle, cfg)
    assert_error(pyoci("create", "--bundle", bundle, cid), "no listener")
    assert_no_container(pyoci, cid)

    listener = _Listener(close_at_once=True)  # accepts, then hangs up before the state
    try:
        cfg["linux"]["seccomp"]["listenerPath"] = listener.path
        write_config(bundle, cfg)
        create(pyoci, bundle, cid)
        listener._t.join(30)
        r = pyoci("start", cid)
        assert_error(r, "listener hung up")
    finally:
        listener.close()
        pyoci("delete", "--force", cid)


# --- user namespace ----------------------------------------------------------------------


def test_user_namespace_mapping_does_not_chown_the_rootfs(pyoci, bundle, cid):
    """User namespace mappings: "The runtime SHOULD NOT modify the ownership of referenced
    filesystems to realize the mapping"; the maps are the configured ones."""
    rootfs = os.path.join(bundle, "rootfs")
    for d, dirs, files in os.walk(rootfs):
        for name in dirs + files:
            os.lchown(os.path.join(d, name), 100000, 100000)
    os.lchown(rootfs, 100000, 100000)
    os.chmod(bundle, 0o755)
    before = {p: os.lstat(os.path.join(rootfs, p)).st_uid for p in ("bin", "etc", "tmp")}

    def edit(cfg):
        cfg["linux"]["namespaces"].append({"type": "user"})
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]

    out = output(run_script(pyoci, bundle, cid, "cat /proc/self/uid_map /proc/self/gid_map",
                            mutate=edit))
    assert [line.split() for line in out.splitlines()] == [["0", "100000", "65536"]] * 2
    assert before == {p: os.lstat(os.path.join(rootfs, p)).st_uid for p in before}


# --- maskedPaths and readonlyPaths -------------------------------------------------------


def test_masked_paths_cannot_be_read(pyoci, bundle, cid):
    """maskedPaths: "will mask over the provided paths inside the container so that they
    cannot be read" (a file and a directory)."""
    def edit(cfg):
        cfg["linux"]["maskedPaths"] = ["/proc/kcore", "/proc/scsi", "/proc/timer_list",
                                       "/proc/acpi"]

    out = output(run_script(pyoci, bundle, cid,
                            "wc -c < /proc/timer_list; ls /proc/acpi | wc -l; "
                            "head -c 16 /proc/kcore | wc -c", mutate=edit))
    assert out.split() == ["0", "0", "0"]


def test_readonly_paths_cannot_be_written(pyoci, bundle, cid):
    """readonlyPaths: "will set the provided paths as readonly inside the container"."""
    def edit(cfg):
        cfg["linux"]["readonlyPaths"] = ["/proc/sys", "/proc/irq/default_smp_affinity"]
        cfg["process"]["capabilities"] = {k: ["CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE"]
                                          for k in ("bounding", "effective", "permitted")}

    out = output(run_script(pyoci, bundle, cid,
                            # the current values, written back: harmless if it worked
                            "for f in /proc/sys/kernel/panic /proc/irq/default_smp_affinity;"
                            " do v=$(cat $f); (echo $v > $f) 2>&1; done; true",
                            mutate=edit))
    assert out.count("Read-only file system") == 2, out


# --- LSM labels on a host without the LSM ------------------------------------------------


def _lsm_enabled(name: str) -> bool:
    from pyoci import features

    return features.features()["linux"][name]["enabled"]


@pytest.mark.parametrize("key,value,lsm", [
    ("apparmorProfile", "spec-profile", "apparmor"),
    ("selinuxLabel", "system_u:system_r:container_t:s0", "selinux"),
])
def test_lsm_label_without_the_lsm_is_an_error(pyoci, bundle, cid, key, value, lsm):
    """process.apparmorProfile / process.selinuxLabel on a host whose LSM is not enabled:
    the label cannot be applied, and running unconfined instead would be silent: an error
    (runc fails too), and features reports the LSM as disabled."""
    if _lsm_enabled(lsm):
        pytest.skip(f"{lsm} is enabled on this host")
    cfg = _base_config(["true"])
    cfg["process"][key] = value
    write_config(bundle, cfg)
    assert_error(pyoci("create", "--bundle", bundle, cid), f"{key} without {lsm}")
    assert_no_container(pyoci, cid)
    r = pyoci("features")
    assert r.returncode == 0
    assert json.loads(r.stdout)["linux"][lsm]["enabled"] is False
