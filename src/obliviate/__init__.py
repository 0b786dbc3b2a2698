"""obliviate: machine unlearning for LLMs, with an exact TOFU evaluation."""

__version__ = "0.1.0"
