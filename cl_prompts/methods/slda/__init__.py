"""Streaming LDA: class means and one shared covariance of the frozen query."""
