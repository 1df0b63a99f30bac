"""A tiny random cross-encoder built on this machine, so the reranker examples run offline.

It stands in for a real reranker model (e.g. ``cross-encoder/ms-marco-MiniLM-L-6-v2``, which would be
downloaded): a one-layer BERT with a single-logit head and the bundled model's tokenizer, saved in the
layout ``sentence_transformers.CrossEncoder(path)`` loads. Its scores are arbitrary but fixed by ``seed``.
"""
from __future__ import annotations

from pathlib import Path


def build_tiny_cross_encoder(folder: str | Path, seed: int = 0) -> str:
    """Save a tiny random cross-encoder (BERT, 1 layer, 32-d, one relevance logit) into ``folder``; returns its path."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from ragcun import bundled_model_path

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(bundled_model_path())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, num_labels=1, initializer_range=0.5)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)
