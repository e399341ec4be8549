"""Naive sequential fine-tuning of the whole model: the forgetting reference."""
