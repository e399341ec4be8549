"""Nearest class mean on frozen features (SimpleCIL)."""
