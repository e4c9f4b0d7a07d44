"""Fixtures for the client tests: podman and containerd, from Debian's packages, driving pyoci.

The runtime under test is ``$PYOCI_CLIENT_RUNTIME`` (default: the ``pyoci`` next to the
interpreter running pytest, i.e. ``.venv/bin/pyoci``). ``PYOCI_CLIENT_RUNTIME=/usr/sbin/runc``
runs the very same scenarios with runc, so that a failure says something about pyoci and
not about the harness.

Everything is private to one pytest session, under one directory
``/tmp/pyoci-test-clients-XXXX`` (the ``pyoci-test-`` prefix makes other sessions' leak
checks treat it as someone else's):

* the runtime is called through a wrapper script that logs every command line to
  ``calls.log`` and puts ``--root <base>/runtime-root`` first, so the runtime's state
  never lands in the host's /run/runc or /run/pyoci (podman does not pass ``--root``;
  containerd's runc shim passes the ``--runc-root`` we give it, which then wins);
* podman: its own ``containers.conf`` and ``storage.conf`` (vfs driver, graph root, run
  root, tmp dir, file locks, events log, network config dir), the runtime entry ``pyoci``
  listed in ``runtime_supports_json``, ``cgroup_manager = "cgroupfs"``, lowered
  ``default_ulimits`` (this machine lacks CAP_SYS_RESOURCE, so podman's defaults fail
  with every runtime), no network (``netns = "none"``: loopback only);
* containerd: started by the fixture as a subprocess with its own root, state dir,
  sockets and config, stopped (SIGTERM to its PID, then SIGKILL) at the end;
* cgroups: every container is put under ``/<cgroup-parent>`` (``clients-test-<hex>``,
  not named after pyoci so that other test sessions' leak checks leave it alone), which
  is removed, deepest first, at the end. The host's own cgroup files are never written.

Images are built locally from ``/bin/busybox`` (no registry): a rootfs tarball for
``podman import`` and a hand-made OCI archive for ``ctr images import``.

podman's storage and image, and the containerd daemon, last for their test module
(``podman_session``, ``containerd_session``). Per test, the ``podman`` / ``ctr``
fixtures remove whatever the test left (containers, tasks, snapshots) even when it
fails, then fail the test if the runtime still holds state for any container, a
container process is still running, or a conmon / shim outlives its container.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import pytest
from client_harness import (
    BASE_PREFIX,
    CTR_IMAGE,
    IMAGE,
    RUNTIME,
    Base,
    Containerd,
    Podman,
    kill_pids,
    leak_report,
    processes_mentioning,
    remove_base,
    remove_stale_bases,
    tar_rootfs,
    unmount_under,
    write_oci_archive,
    write_wrapper,
)


@pytest.fixture(scope="module")
def client_base(busybox_rootfs):
    """The module's private directory, runtime wrapper and image files."""
    if os.geteuid() != 0:
        pytest.skip("client tests run real containers: they need root")
    if not os.access(RUNTIME, os.X_OK):
        pytest.skip(f"runtime {RUNTIME} not found (PYOCI_CLIENT_RUNTIME)")
    remove_stale_bases()
    path = tempfile.mkdtemp(prefix=BASE_PREFIX, dir="/tmp")
    base = Base(path)
    base.write_owner()
    os.mkdir(base.runtime_root)
    write_wrapper(base)
    tar_rootfs(busybox_rootfs, base.rootfs_tar)
    write_oci_archive(base.rootfs_tar, base.oci_archive, CTR_IMAGE)
    try:
        yield base
    finally:
        # whatever the client fixtures could not stop: our processes, mounts, cgroups
        left = remove_base(base)
        if left:
            print(f"clients: left {path} behind: {left}", file=sys.stderr)


@pytest.fixture(scope="module")  # stopped once test_podman.py is done
def podman_session(client_base):
    if not shutil.which("podman") or not shutil.which("conmon"):
        pytest.skip("podman/conmon not installed (bash .ci/setup installs them)")
    p = Podman(client_base)
    p.write_config()
    try:
        p("import", "--change", "CMD=[\"sh\"]", client_base.rootfs_tar, IMAGE, check=True,
          timeout=120)
        yield p
    finally:
        p.cleanup()
        p("rmi", "-a", "-f", timeout=120)
        kill_pids(processes_mentioning(p.dir))
        unmount_under(p.dir)


@pytest.fixture
def podman(podman_session):
    """The session's podman; whatever the test left is removed, then leaks fail it."""
    yield podman_session
    podman_session.cleanup()
    problems = leak_report(podman_session.base, "podman", podman_session.dir)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")  # stopped once test_containerd.py is done
def containerd_session(client_base):
    for tool in ("containerd", "ctr", "containerd-shim-runc-v2"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not installed (bash .ci/setup installs containerd)")
    c = Containerd(client_base)
    c.start()
    try:
        c("images", "import", client_base.oci_archive, check=True, timeout=120)
        yield c
    finally:
        try:
            if c.proc is not None and c.proc.poll() is None:
                c.cleanup()
                c("images", "rm", CTR_IMAGE)
        finally:
            c.stop()
            # shims outlive containerd by design: stop ours (their command line names
            # our socket address)
            kill_pids(processes_mentioning(c.address))
            unmount_under(c.dir)


@pytest.fixture
def ctr(containerd_session):
    """The session's containerd; the test's tasks and containers are removed afterwards."""
    yield containerd_session
    containerd_session.cleanup()
    problems = leak_report(containerd_session.base, "containerd",
                            f"-address {containerd_session.address}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
