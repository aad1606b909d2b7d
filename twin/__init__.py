"""GridTwin: digital twin of a grid-responsive AI/HPC data centre."""

__version__ = "0.1.0"
