"""The container object and its operations, one operation per module.

Only :mod:`pyoci.container.container` is imported eagerly; ``create`` and
``run`` pull in what only they need (config validation, init, hooks).
"""

from pyoci.container.container import Container


def run(*args, **kwargs) -> int:
    """Create, start and (unless detached) wait for a container; see :mod:`.run`."""
    from pyoci.container.run import run as _run

    return _run(*args, **kwargs)


__all__ = ["Container", "run"]
