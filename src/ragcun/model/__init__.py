"""The model: ``GaussianEncoder`` (a sentence-transformers model with a Gaussian head), its heads, role-aware
encoding and the on-disk embedding cache."""
