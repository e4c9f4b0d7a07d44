"""The process entry point: the `pyoci` command (``pyoci.__main__:entry``) and `python -m pyoci`.

Before anything else is imported, the cyclic garbage collector's first threshold goes from
700 to 50000 allocations: a command's start-up allocates tens of thousands of objects
(click, pyoci's modules) that all live to the end, and collecting every 700 of them only
walks them over and over (about 3% of `state` and of `run`). A short command now never
collects; a long-running one (a foreground `run`, `events`) still does, in larger batches.

Then pyoci's modules are served from their compiled bundle (:mod:`pyoci.code_bundle`),
when it is there and up to date.

The plain forms of `create`, `run`, `exec`, `pause`, `resume` and `delete` are parsed
without click (:mod:`pyoci.cli_fast`); everything else goes to the click CLI.
"""

import gc
import sys

gc.set_threshold(50_000, *gc.get_threshold()[1:])


def entry() -> None:
    from pyoci import code_bundle

    code_bundle.install(__file__.rpartition("/")[0])
    from pyoci import cli_fast

    code = cli_fast.main(sys.argv[1:])
    if code is None:
        from pyoci.cli import entry as cli_entry

        cli_entry()
    from pyoci.cli_common import exit_now

    exit_now(code)


if __name__ == "__main__":
    entry()
