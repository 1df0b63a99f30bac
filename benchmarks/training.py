"""ragcun-train speed: frozen-mode steps per second, and the share of a full fine-tuning step spent in SIGReg.

Feeds the README's training section (speed). Run from the repository root:

    HF_HUB_OFFLINE=1 python -m benchmarks.training [--batch-size 64] [--full-batch-size 16] [--repeats 5]

Frozen mode never runs the transformer, so its steps are timed on random unit-length base
embeddings (a 5,000-document corpus, every document a negative). The full fine-tuning step
(tokenise, forward both columns through the bundled all-MiniLM-L6-v2, GaussianRAGLoss, backward,
AdamW) is timed against SIGReg's own forward + backward on embeddings of the same shape.
Figures are indicative on shared machines; the median of the repeats is printed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from ragcun import GaussianEncoder
from ragcun.losses import SIGRegLoss
from ragcun_train.frozen import CachedBatchSource, train_frozen
from ragcun_train.objectives import build_loss, objective_weights

WORDS = "the a of protein cell cancer risk gene brain study patients effect increase reduced higher mice trial".split()


def _unit(n: int, d: int, g: torch.Generator) -> torch.Tensor:
    x = torch.randn(n, d, generator=g)
    return x / x.norm(dim=1, keepdim=True)


def frozen_steps_per_second(model: GaussianEncoder, batch_size: int, steps: int, corpus: int = 5000, rows: int = 1000) -> float:
    """Steps per second of frozen-mode training (gaussian-rag, whole-corpus negatives)."""
    g = torch.Generator().manual_seed(0)
    d = model.ragcun_config["input_dim"]
    source = CachedBatchSource([_unit(rows, d, g), _unit(rows, d, g)], _unit(corpus, d, g), torch.randint(0, corpus, (rows,), generator=g))
    loss = build_loss(model, objective_weights("gaussian-rag"))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        train_frozen(model, loss, source, epochs=1, max_steps=steps, batch_size=batch_size, lr=1e-3, seed=0, corpus_negatives=8192,
                     isotropy_sample=batch_size, checkpoint_dir=Path(tmp), save_steps=0, show_progress=False)
        return steps / (time.perf_counter() - start)


def sigreg_share(model: GaussianEncoder, batch_size: int, repeats: int) -> tuple[float, float]:
    """Median seconds of a full fine-tuning step and of SIGReg's forward + backward within it."""
    g = torch.Generator().manual_seed(0)
    texts = [" ".join(WORDS[i] for i in torch.randint(0, len(WORDS), (n,), generator=g)) for n in [12, 60] * batch_size]
    anchors, positives = texts[0::2], texts[1::2]
    loss = build_loss(model, objective_weights("gaussian-rag"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    sigreg = SIGRegLoss(model)
    model.train()
    step_times, sigreg_times = [], []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        features = [model.preprocess(anchors), model.preprocess(positives)]
        components = loss(features, None)
        optimizer.zero_grad()
        sum(components.values()).backward()
        optimizer.step()
        step_times.append(time.perf_counter() - start)
        x = [torch.randn(batch_size, model.get_embedding_dimension(), requires_grad=True) for _ in range(2)]
        start = time.perf_counter()
        sigreg.compute_loss_from_embeddings(x).backward()
        sigreg_times.append(time.perf_counter() - start)
    return statistics.median(step_times[1:]), statistics.median(sigreg_times[1:])


def main() -> None:
    """Print both figures."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-size", type=int, default=64, help="frozen-mode batch size")
    p.add_argument("--full-batch-size", type=int, default=16, help="full fine-tuning batch size (pairs)")
    p.add_argument("--steps", type=int, default=100, help="frozen-mode steps to time")
    p.add_argument("--repeats", type=int, default=5, help="full fine-tuning steps to time")
    args = p.parse_args()
    torch.manual_seed(0)
    model = GaussianEncoder(device="cpu")
    print(f"torch threads: {torch.get_num_threads()}")
    sps = frozen_steps_per_second(model, args.batch_size, args.steps)
    print(f"frozen mode (all-MiniLM-L6-v2 head 384→384, batch {args.batch_size}, 5,000 corpus negatives): {sps:.1f} steps/s")
    step, sig = sigreg_share(model, args.full_batch_size, args.repeats)
    print(f"full fine-tuning step (batch {args.full_batch_size} pairs): {step * 1000:.0f} ms; "
          f"SIGReg forward+backward (256 slices, {2 * args.full_batch_size} embeddings): {sig * 1000:.1f} ms = {100 * sig / step:.1f}% of the step")


if __name__ == "__main__":
    main()
