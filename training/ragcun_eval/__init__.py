"""ragcun-eval: BEIR retrieval metrics, the Gaussian-embedding claims measured (separation, calibration, norm as
confidence), and isotropy reports with plots.

Modules (each importable on its own):

- :mod:`ragcun_eval.beir` — the BEIR loader (``load_beir(folder, split)``);
- :mod:`ragcun_eval.metrics` — nDCG@k, Recall@k, MRR@k, MAP@k (BEIR / trec_eval definitions);
- :mod:`ragcun_eval.models` — ``--model NAME[:geometry]`` parsing and loading; ``Embedder`` gives model
  outputs with base outputs from the shared on-disk cache (:mod:`ragcun.model.cache`);
- :mod:`ragcun_eval.geometry` — cosine / raw L2 / corpus-whitened vector spaces;
- :mod:`ragcun_eval.retrieval` — exact L2 retrieval and per-query metrics;
- :mod:`ragcun_eval.claims` — separation, calibration, norm-as-confidence, with verdict rules;
- :mod:`ragcun_eval.isotropy_report` — isotropy metrics side by side and plots;
- :mod:`ragcun_eval.report` — tables and charts; :mod:`ragcun_eval.cli` — the ``ragcun-eval`` command.
"""
