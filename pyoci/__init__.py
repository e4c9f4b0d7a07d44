"""pyoci: an OCI container runtime in Python, a drop-in for runc."""

__version__ = "0.1.0"
