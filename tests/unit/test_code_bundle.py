"""pyoci.code_bundle: modules served from the bundle only while their source is the one
compiled into it; anything else is the import system's, as if there were no bundle.

Each import runs in a fresh interpreter (``python -I -S``, as the front door runs pyoci),
on a small package made for the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import pyoci
from pyoci import code_bundle

REPO = os.path.dirname(os.path.dirname(pyoci.__file__))

PROBE = """
import json, sys
pkg_dir, names = sys.argv[1], sys.argv[2].split(",")
sys.path[:0] = [sys.argv[3], sys.argv[4]]
from pyoci import code_bundle
finder = code_bundle.install(pkg_dir)
out = {"installed": finder is not None}
for name in names:
    __import__(name)
    m = sys.modules[name]
    out[name] = {"loader": type(m.__loader__).__name__, "value": getattr(m, "VALUE", None),
                 "file": m.__file__, "path": list(getattr(m, "__path__", []) or [])}
print(json.dumps(out))
"""


@pytest.fixture
def package(tmp_path):
    """fakepkg: a package, a module, a subpackage and its module; returns its directory."""
    root = tmp_path / "fakepkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("VALUE = 'pkg'\n")
    (root / "a.py").write_text("VALUE = 1\n")
    (root / "sub" / "__init__.py").write_text("")
    (root / "sub" / "b.py").write_text("from fakepkg import a\nVALUE = a.VALUE + 1\n")
    (root / "fails.py").write_text("def boom():\n    raise RuntimeError('boom')  # here\n")
    return str(root)


def probe(pkg_dir: str, *names: str) -> dict:
    res = subprocess.run([sys.executable, "-I", "-S", "-c", PROBE, pkg_dir, ",".join(names),
                          os.path.dirname(pkg_dir), REPO],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_a_fresh_bundle_serves_every_module(package):
    code_bundle.build(package)
    out = probe(package, "fakepkg", "fakepkg.a", "fakepkg.sub", "fakepkg.sub.b")
    assert out["installed"]
    for name in ("fakepkg", "fakepkg.a", "fakepkg.sub", "fakepkg.sub.b"):
        assert out[name]["loader"] == "BundledLoader", name
    assert out["fakepkg.sub.b"]["value"] == 2
    assert out["fakepkg.a"]["file"] == os.path.join(package, "a.py")
    assert out["fakepkg.sub"]["path"] == [os.path.join(package, "sub")]


def test_no_bundle_is_plain_imports(package):
    out = probe(package, "fakepkg.a")
    assert not out["installed"]
    assert out["fakepkg.a"]["loader"] == "SourceFileLoader"


def test_an_edited_module_is_imported_from_its_source(package):
    code_bundle.build(package)
    with open(os.path.join(package, "a.py"), "w") as f:
        f.write("VALUE = 10\n")
    out = probe(package, "fakepkg.a", "fakepkg.sub.b")
    assert out["fakepkg.a"] == {**out["fakepkg.a"], "loader": "SourceFileLoader", "value": 10}
    assert out["fakepkg.sub.b"]["loader"] == "BundledLoader"  # its own source is unchanged
    assert out["fakepkg.sub.b"]["value"] == 11


def test_same_size_edit_is_seen_by_its_mtime(package):
    code_bundle.build(package)
    path = os.path.join(package, "a.py")
    st = os.stat(path)
    with open(path, "w") as f:
        f.write("VALUE = 7\n")  # as long as before
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert probe(package, "fakepkg.a")["fakepkg.a"]["value"] == 7


def test_a_removed_module_is_not_served(package):
    code_bundle.build(package)
    os.unlink(os.path.join(package, "a.py"))
    res = subprocess.run([sys.executable, "-I", "-S", "-c", PROBE, package, "fakepkg.a",
                          os.path.dirname(package), REPO],
                         capture_output=True, text=True, timeout=30)
    assert "ModuleNotFoundError" in res.stderr


@pytest.mark.parametrize("damage", ["truncate", "magic", "interpreter", "empty"])
def test_a_damaged_or_foreign_bundle_is_ignored(package, damage):
    path = code_bundle.build(package)
    with open(path, "rb") as f:
        data = f.read()
    head = len(code_bundle.MAGIC)
    data = {"truncate": data[:head + 20],
            "magic": b"X" + data[1:],
            "interpreter": data[:head] + b"\0\0\0\0" + data[head + 4:],
            "empty": b""}[damage]
    with open(path, "wb") as f:
        f.write(data)
    out = probe(package, "fakepkg.a")
    assert not out["installed"]
    assert out["fakepkg.a"]["loader"] == "SourceFileLoader"


def test_a_damaged_module_entry_falls_back_to_its_source(package):
    path = code_bundle.build(package)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 8)  # the last module's code is cut short
    out = probe(package, "fakepkg", "fakepkg.a", "fakepkg.fails", "fakepkg.sub.b")
    assert out["fakepkg.sub.b"]["value"] == 2  # all imported, whichever entry was cut


def test_a_traceback_shows_the_source_line(package):
    code_bundle.build(package)
    code = ("import sys; sys.path[:0] = [sys.argv[2], sys.argv[3]]\n"
            "from pyoci import code_bundle; assert code_bundle.install(sys.argv[1])\n"
            "import fakepkg.fails; fakepkg.fails.boom()\n")
    res = subprocess.run([sys.executable, "-I", "-S", "-c", code, package,
                          os.path.dirname(package), REPO],
                         capture_output=True, text=True, timeout=30)
    assert "raise RuntimeError('boom')  # here" in res.stderr
    assert os.path.join(package, "fails.py") in res.stderr


def test_install_is_once_per_process(package):
    code_bundle.build(package)
    code = ("import sys; sys.path[:0] = [sys.argv[2]]\n"
            "from pyoci import code_bundle\n"
            "print(code_bundle.install(sys.argv[1]) is not None,"
            " code_bundle.install(sys.argv[1]) is None)\n")
    res = subprocess.run([sys.executable, "-I", "-S", "-c", code, package, REPO],
                         capture_output=True, text=True, timeout=30)
    assert res.stdout.split() == ["True", "True"], res.stderr


def test_no_descriptor_stays_open(package):
    """A descriptor kept open would take the place of a --preserve-fds one the caller did
    not pass, and be handed to the container."""
    path = code_bundle.build(package)
    code = ("import os, sys; sys.path[:0] = [sys.argv[2], sys.argv[3]]\n"
            "from pyoci import code_bundle; assert code_bundle.install(sys.argv[1])\n"
            "import fakepkg.a, fakepkg.sub.b\n"
            "for fd in os.listdir('/proc/self/fd'):\n"
            "    try:\n"
            "        print(os.readlink(f'/proc/self/fd/{fd}'))\n"
            "    except OSError:\n"
            "        pass  # listdir's own\n")
    res = subprocess.run([sys.executable, "-I", "-S", "-c", code, package,
                          os.path.dirname(package), REPO],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert path not in res.stdout.splitlines()
