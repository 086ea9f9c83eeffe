"""Isolated builds: made real for a run, listed, and cleaned."""
