"""The ``settleguard`` console command: ``agent``, ``collector``, ``sim`` and ``demo``."""

__version__ = "0.1.0"
