"""sovstack: a sovereign AI stack in a box."""

__all__ = ["__version__"]

__version__ = "0.1.0"
