"""``resume``: thaw a paused container."""

from __future__ import annotations

from pyoci import state as st
from pyoci.container.container import Container
from pyoci.container.pause import cgroup_manager
from pyoci.errors import PyociError


def resume(container: Container) -> None:
    with st.Lock(container.dir):
        stored = container.stored()
        if st.status_of(container.dir, stored) != "paused":
            raise PyociError("container not paused")
        cgroup_manager(container, stored).thaw()
