"""`python -m pyoci`, for when the console script is not on PATH."""

from pyoci.cli import main

if __name__ == "__main__":
    main()
