"""Sequential linear head on frozen features, with or without masking of absent classes."""
