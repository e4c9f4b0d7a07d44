"""The process entry point: the `pyoci` script (``pyoci.__main__:entry``) and `python -m pyoci`.

Before anything else is imported, the cyclic garbage collector's first threshold goes from
700 to 50000 allocations: a command's start-up allocates tens of thousands of objects
(click, pyoci's modules) that all live to the end, and collecting every 700 of them only
walks them over and over (about 3% of `state` and of `run`). A short command now never
collects; a long-running one (a foreground `run`, `events`) still does, in larger batches.
"""

import gc

gc.set_threshold(50_000, *gc.get_threshold()[1:])


def entry() -> None:
    from pyoci.cli import entry as cli_entry

    cli_entry()


if __name__ == "__main__":
    entry()
