"""All training data at once: the (non-continual) upper bound."""
