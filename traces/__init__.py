"""Trace readers and synthetic trace generators (jobs, grid carbon intensity)."""
