"""``exec`` by an unprivileged user into its own rootless container: the user namespace is
entered first (it grants the rights for the rest), and there is no cgroup to join."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile

import pytest
from exec_support import one_line_error, pyoci_only

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def user():
    """A throwaway user made with useradd, removed afterwards."""
    if shutil.which("useradd") is None:
        pytest.skip("useradd not available")
    name = f"pyoci-x{secrets.token_hex(3)}"
    subprocess.run(["useradd", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", "-U",
                    name], check=True, capture_output=True)
    try:
        import pwd

        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", name], capture_output=True)


def _chown_tree(path: str, uid: int, gid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [dirpath] + [os.path.join(dirpath, n) for n in dirnames + filenames]:
            os.lchown(name, uid, gid)


@pyoci_only
def test_rootless_exec(user, new_bundle, cid, _leak_check):
    bundle = new_bundle()
    os.unlink(os.path.join(bundle, "config.json"))
    _chown_tree(bundle, user.pw_uid, user.pw_gid)
    xdg = tempfile.mkdtemp(prefix="pyoci-test-xdg-", dir="/tmp")
    _leak_check.bundles.append(xdg)  # the leak check looks for processes mentioning it
    os.chown(xdg, user.pw_uid, user.pw_gid)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "XDG_RUNTIME_DIR": xdg,
           "PYTHONPATH": REPO}
    py = [sys.executable, "-m", "pyoci"]

    def as_user(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        # files, not pipes: a detached container keeps its stdio open
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            p = subprocess.run([*py, *argv], user=user.pw_uid, group=user.pw_gid,
                               extra_groups=[], env=env, cwd=bundle, stdout=out, stderr=err,
                               timeout=timeout, stdin=subprocess.DEVNULL)
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(p.args, p.returncode, out.read().decode(),
                                               err.read().decode())

    try:
        assert as_user("spec", "--rootless").returncode == 0
        with open(os.path.join(bundle, "config.json")) as f:
            cfg = json.load(f)
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = ["sleep", "300"]
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(cfg, f)
        r = as_user("run", "-d", cid)
        assert r.returncode == 0, r.stderr
        r = as_user("exec", cid, "sh", "-c", "id -u; cat /proc/self/uid_map; exit 6")
        assert r.returncode == 6, r.stderr
        lines = r.stdout.splitlines()
        assert lines[0] == "0"
        assert lines[1].split() == ["0", str(user.pw_uid), "1"]
        one_line_error(as_user("exec", "-u", "1000", cid, "true"), "exec failed: ", "1000")
    finally:
        with contextlib.suppress(Exception):
            as_user("delete", "--force", cid)
