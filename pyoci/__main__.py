"""`python -m pyoci`, for when the console script is not on PATH."""

from pyoci.cli import entry

if __name__ == "__main__":
    entry()
