"""RanPAC: random-projection features of the frozen query, ridge regression in closed form."""

from cl_prompts.methods.ranpac.config import RanPACConfig
from cl_prompts.methods.ranpac.model import RanPAC

__all__ = ["RanPACConfig", "RanPAC"]
