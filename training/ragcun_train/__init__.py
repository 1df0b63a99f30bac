"""ragcun-train: fine-tune a Gaussian (isotropic, L2-ranked) embedding model on pairs, BEIR qrels or a plain corpus.

``ragcun_train.train(data, **options)`` does what the ``ragcun-train`` command does.
"""

from ragcun_train.api import DEMO_DIR, TrainConfig, TrainResult, train
from ragcun_train.evaluation import IsotropyEvaluator

__all__ = ["DEMO_DIR", "IsotropyEvaluator", "TrainConfig", "TrainResult", "train"]
