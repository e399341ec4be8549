"""Methods that answer by generation: a frozen causal LM scores each class's answer text.

A class is an answer text (its readable name, or one given by the user); prediction
ranks the seen classes by the mean log-probability of their answers after the prompted,
templated input (:meth:`PromptedCausalLM.answer_log_likelihood`), and training minimises
the cross-entropy of each input's own answer tokens. They share their names with the
encoder methods where the idea is the same (``prompt_tuning``, ``growing_pool``);
``build_model`` picks this variant when the backbone is a causal LM.
"""

from cl_prompts.methods.generative.answers import read_label_texts, readable_label
from cl_prompts.methods.generative.base import GenerativeMethod

__all__ = ["GenerativeMethod", "read_label_texts", "readable_label"]
