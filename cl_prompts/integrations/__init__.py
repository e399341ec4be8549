"""Bridges to outside frameworks; only this package imports avalanche (see avalanche.py)."""
