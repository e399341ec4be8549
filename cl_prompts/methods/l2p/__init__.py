"""Learning to Prompt (Wang et al., CVPR 2022)."""
