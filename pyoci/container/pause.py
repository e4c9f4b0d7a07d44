"""``pause``: freeze every process of the container in its cgroup."""

from __future__ import annotations

from pyoci import state as st
from pyoci.container.container import Container
from pyoci.errors import PyociError


def cgroup_manager(container: Container, stored: dict | None):
    """The container's cgroup manager; an error if it has none (created rootless)."""
    from pyoci.cgroups import load_manager

    manager = load_manager(stored) if stored else None
    if manager is None:
        raise PyociError(f"container {container.id} has no cgroup")
    return manager


def pause(container: Container) -> None:
    with st.Lock(container.dir):
        stored = container.stored()
        status = st.status_of(container.dir, stored)
        if status not in ("running", "created"):
            raise PyociError("container not running")
        cgroup_manager(container, stored).freeze()
