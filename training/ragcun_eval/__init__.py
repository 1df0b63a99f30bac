"""ragcun-eval: BEIR retrieval metrics, the seed's claims measured, and isotropy reports with plots.

Public building blocks, importable on their own:

- :func:`ragcun_eval.beir.load_beir` — the single BEIR loader (corpus, queries, qrels of one split);
- :mod:`ragcun_eval.metrics` — nDCG@k, Recall@k, MRR@k, MAP@k with BEIR / trec_eval definitions.
"""
