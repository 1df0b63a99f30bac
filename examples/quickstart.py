"""Encode a few documents with the bundled model's Gaussian head and retrieve by L2 distance.

Run: ``python examples/quickstart.py`` (offline; uses the bundled all-MiniLM-L6-v2).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from ragcun import GaussianEncoder, isotropy_report

DOCUMENTS = [
    "Aspirin irreversibly inhibits cyclooxygenase, reducing prostaglandin synthesis.",
    "The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
    "Mitochondria produce most of the cell's ATP through oxidative phosphorylation.",
    "Python is a programming language that emphasises readability.",
    "Photosynthesis converts light energy into chemical energy in chloroplasts.",
    "The Treaty of Versailles ended the First World War in 1919.",
]
QUERIES = ["how do cells make energy", "when was the eiffel tower built", "what does aspirin block"]


def main() -> None:
    """Encode, fit the head's centring and scale on the documents, and rank by Euclidean distance."""
    model = GaussianEncoder()
    model.fit_identity(DOCUMENTS)  # centre and scale on the corpus being indexed: no ranking changes
    docs = model.encode(DOCUMENTS)
    for query, q in zip(QUERIES, model.encode(QUERIES)):
        distances = np.linalg.norm(docs - q, axis=1)
        best = int(np.argmin(distances))
        print(f"{query!r} -> {DOCUMENTS[best]!r} (L2 distance {distances[best]:.2f})")
    report = isotropy_report(docs)
    print(f"embedding dim {docs.shape[1]}, mean norm {report.norm_mean:.2f} (N(0, I) would give {report.expected_norm:.2f})")


if __name__ == "__main__":
    main()
