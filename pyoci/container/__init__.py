"""The container object and its operations, one operation per module.

Only :mod:`pyoci.container.container` is imported eagerly; ``create`` and
``run`` pull in what only they need (config validation, init, hooks).
"""

from pyoci.container.container import Container

__all__ = ["Container"]
