"""DualPrompt (Wang et al., ECCV 2022)."""
