"""config.md, "Hostname" and "Domainname" (definitions; they carry no MUST).

https://github.com/opencontainers/runtime-spec/blob/v1.3.0/config.md#hostname
"""

from __future__ import annotations

import os
import socket

from spec_support import output, run_script


def test_hostname_is_the_container_hostname(pyoci, bundle, cid):
    """Hostname: "specifies the container's hostname as seen by processes running inside
    the container ... this will change the hostname in the container UTS namespace" (the
    host's is untouched)."""
    host_before = socket.gethostname()

    def edit(cfg):
        cfg["hostname"] = "spec-hostname"

    box = run_script(pyoci, bundle, cid, "hostname; cat /proc/sys/kernel/hostname",
                     mutate=edit)
    assert output(box) == "spec-hostname\nspec-hostname\n"
    assert socket.gethostname() == host_before


def test_domainname_is_the_container_domainname(pyoci, bundle, cid):
    """Domainname: "specifies the container's domainname as seen by processes running
    inside the container" (the host's is untouched)."""
    host_before = os.uname().nodename, open("/proc/sys/kernel/domainname").read()

    def edit(cfg):
        cfg["domainname"] = "spec.example.test"

    box = run_script(pyoci, bundle, cid, "cat /proc/sys/kernel/domainname", mutate=edit)
    assert output(box) == "spec.example.test\n"
    assert (os.uname().nodename, open("/proc/sys/kernel/domainname").read()) == host_before
