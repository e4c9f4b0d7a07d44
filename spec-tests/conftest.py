"""The conformance suite's fixtures: those of ``tests/conftest.py``, re-exported.

``tests/conftest.py`` is loaded under its own module name (``pyoci_tests_conftest``), not
as ``conftest``: pytest imports every conftest.py of a directory without ``__init__.py``
as the module ``conftest``, so ``from conftest import *`` here would import this file
itself, and ``pytest_plugins`` is refused outside the top-level conftest.  Loading it by
path works the same for ``pytest spec-tests`` and ``pytest tests spec-tests``.

Re-exported: ``busybox_rootfs``, ``root``, ``new_bundle``, ``bundle``, ``cid``,
``pyoci``, ``base_config``, ``write_config`` and the autouse leak check ``_leak_check``
(see ``tests/conftest.py`` for what each does).  ``spec_support`` (this directory) holds
the suite's own helpers.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
_NAME = "pyoci_tests_conftest"


def _load_shared():
    if _NAME in sys.modules:
        return sys.modules[_NAME]
    spec = importlib.util.spec_from_file_location(_NAME, HERE.parent / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module
    spec.loader.exec_module(module)
    return module


_shared = _load_shared()
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # for ``import spec_support`` in any import mode

_leak_check = _shared._leak_check
busybox_rootfs = _shared.busybox_rootfs
root = _shared.root
new_bundle = _shared.new_bundle
bundle = _shared.bundle
cid = _shared.cid
pyoci = _shared.pyoci
_base_config_fixture = _shared._base_config_fixture
_write_config_fixture = _shared._write_config_fixture
