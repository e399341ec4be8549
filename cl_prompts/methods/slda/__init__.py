"""Streaming LDA: class means and one shared covariance of the frozen query."""

from cl_prompts.methods.slda.config import SLDAConfig
from cl_prompts.methods.slda.model import SLDA

__all__ = ["SLDAConfig", "SLDA"]
