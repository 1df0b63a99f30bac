"""On-disk cache of base embeddings, keyed by a fingerprint of the base model and by each text.

Layout: ``<root>/<model fingerprint>/shard-<sha256>.safetensors``; each shard holds
``embeddings`` (N, D) float32 and ``keys`` (N, 32) uint8, the sha256 digests of its texts. Shards
are written atomically and never modified, so concurrent readers are safe. No pickle.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from ragcun import GaussianEncoder

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = Path(os.environ.get("RAGCUN_CACHE", Path.home() / ".cache" / "ragcun")) / "embeddings"


def model_fingerprint(model: GaussianEncoder) -> str:
    """sha256 of the base modules' weights and configuration (everything before the head)."""
    h = hashlib.sha256()
    for i in range(model.head_start):
        module = model[i]
        config = module.get_config_dict() if hasattr(module, "get_config_dict") else {}
        h.update(f"{i}:{type(module).__name__}:{json.dumps(config, sort_keys=True, default=str)}".encode())
        for name, tensor in sorted(module.state_dict().items()):
            t = tensor.detach().cpu().contiguous()
            h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    h.update(json.dumps([model.prompts, model.default_prompt_name], sort_keys=True).encode())
    return h.hexdigest()


def text_key(text: str) -> bytes:
    """The 32-byte sha256 digest that names ``text`` in the cache."""
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    """Base embeddings of one model, computed once per text and kept on disk.

    Args:
        root: the cache folder (one subfolder per model fingerprint).
        fingerprint: the model's :func:`model_fingerprint`.
    """

    def __init__(self, root: str | Path, fingerprint: str) -> None:
        self.dir = Path(root) / fingerprint[:32]
        self._rows: dict[bytes, np.ndarray] = {}
        self.hits = 0
        self.misses = 0
        self._load()

    def _load(self) -> None:
        if not self.dir.is_dir():
            return
        for shard in sorted(self.dir.glob("shard-*.safetensors")):
            tensors = load_file(str(shard))
            for key, row in zip(tensors["keys"], tensors["embeddings"]):
                self._rows[key.tobytes()] = row

    def missing(self, texts: Sequence[str]) -> list[str]:
        """The distinct texts of ``texts`` not yet cached, in first-seen order."""
        return list(dict.fromkeys(t for t in texts if text_key(t) not in self._rows))

    def get(self, model: GaussianEncoder, texts: Sequence[str], batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        """Base embeddings of ``texts`` (N, D); encodes and stores only those not cached yet."""
        todo = self.missing(texts)
        self.misses += len(todo)
        self.hits += len(texts) - len(todo)
        if todo:
            log.info("encoding %d new texts with the base model (cache: %s)", len(todo), self.dir)
            emb = model.encode_base(todo, batch_size=batch_size, show_progress_bar=show_progress).astype(np.float32)
            self.put(todo, emb)
        return np.stack([self._rows[text_key(t)] for t in texts]) if texts else np.zeros((0, 0), np.float32)

    def put(self, texts: Sequence[str], embeddings: np.ndarray) -> None:
        """Store ``embeddings`` (N, D) of ``texts`` as a new shard (atomic write)."""
        keys = np.frombuffer(b"".join(text_key(t) for t in texts), dtype=np.uint8).reshape(len(texts), 32)
        emb = np.ascontiguousarray(embeddings, dtype=np.float32)
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"shard-{hashlib.sha256(keys.tobytes()).hexdigest()[:32]}.safetensors"
        fd, tmp = tempfile.mkstemp(dir=self.dir, suffix=".tmp")
        os.close(fd)
        try:
            save_file({"keys": keys, "embeddings": emb}, tmp)
            os.replace(tmp, self.dir / name)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        for key, row in zip(keys, emb):
            self._rows[key.tobytes()] = row
