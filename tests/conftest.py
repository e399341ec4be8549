"""Suite-wide settings."""

import torch

# Tests use tiny models (width 32): threads buy nothing, and OpenMP spinning on a busy
# 2-core machine made them several times slower.
torch.set_num_threads(1)
