"""A single shared soft prompt trained sequentially: the "no pool" reference."""
