"""pyoci: an OCI container runtime in Python, a drop-in for runc.

The library the ``pyoci`` command is a client of::

    from pyoci import Container

    c = Container.create("web", "/path/to/bundle", root="/run/pyoci")
    c.start()
    c.state()["status"]          # "running"
    c.kill(signal.SIGTERM)
    c.delete(force=True)

``Container`` (and the errors) are loaded on first use, so that ``import pyoci`` stays
cheap for the CLI's hot paths.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: __main__ raises
                      # the GC's threshold before the CLI imports it (and much else)
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

__all__ = ["Container", "ContainerExists", "ContainerNotFound", "InvalidID", "PyociError",
           "__version__"]

if TYPE_CHECKING:
    from pyoci.container import Container
    from pyoci.errors import ContainerExists, ContainerNotFound, InvalidID, PyociError

_LAZY = {
    "Container": "pyoci.container",
    "PyociError": "pyoci.errors",
    "ContainerExists": "pyoci.errors",
    "ContainerNotFound": "pyoci.errors",
    "InvalidID": "pyoci.errors",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pyoci' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
