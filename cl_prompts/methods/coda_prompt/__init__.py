"""CODA-Prompt (Smith et al., CVPR 2023)."""
