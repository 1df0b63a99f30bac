"""``GaussianEmbeddings``: LangChain ``Embeddings`` over ``ragcun.GaussianEncoder``."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from ragcun.model.encoder import BUNDLED_MODEL_NAME
from ragcun.model.encoding import encode_texts, load_encoder


class GaussianEmbeddings(BaseModel, Embeddings):
    """Unnormalised isotropic Gaussian embeddings, to be compared by Euclidean distance.

    ``model_name``: model name or path (default: the bundled all-MiniLM-L6-v2 Gaussian model);
    Queries and documents are encoded with the model's own ``query`` / ``document`` prompts (if it has
    them); ``query_instruction`` / ``text_instruction`` replace those prompts. ``device`` is the torch device
    (``None``: automatic); ``backend`` the inference backend (``"torch"``, ``"onnx"``, ``"onnx-int8"``; ``None``:
    ONNX on a CPU when installed, else torch: see ``ragcun.GaussianEncoder``).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())

    model_name: str = Field(default=BUNDLED_MODEL_NAME)
    batch_size: int = Field(default=32, gt=0)
    device: str | None = None
    backend: str | None = None
    query_instruction: str | None = None
    text_instruction: str | None = None
    show_progress: bool = False
    _encoder: Any = PrivateAttr()

    def __init__(self, encoder: Any = None, **data: Any) -> None:
        super().__init__(**data)
        self._encoder = encoder if encoder is not None else load_encoder(self.model_name, self.device, self.backend)

    @property
    def relevance_calibrator(self) -> Any:
        """The model's ``ragcun.scoring.calibrator.RelevanceCalibrator`` (``None`` if it has none); the stores use it."""
        return getattr(self._encoder, "relevance_calibrator", None)

    @property
    def fusion_settings(self) -> Any:
        """The model's fitted hybrid weight (``ragcun.scoring.fusion_settings.FusionSettings``, ``None`` if it has
        none); a store built with this model uses it unless given ``alpha=``."""
        return getattr(self._encoder, "fusion_settings", None)

    @property
    def dimension(self) -> int:
        """Embedding dimension."""
        return int(self._encoder.get_embedding_dimension())

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents (the model's ``document`` prompt, or ``text_instruction``, prepended)."""
        return encode_texts(self._encoder, texts, "document", instruction=self.text_instruction,
                            batch_size=self.batch_size, show_progress=self.show_progress).tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed one query (the model's ``query`` prompt, or ``query_instruction``, prepended)."""
        return encode_texts(self._encoder, [text], "query", instruction=self.query_instruction, batch_size=1,
                            what="query").tolist()[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async :meth:`embed_documents` (runs in a worker thread)."""
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """Async :meth:`embed_query` (runs in a worker thread)."""
        return await asyncio.to_thread(self.embed_query, text)
