"""LangChain: rerank ragcun's hits with a cross-encoder (``CrossEncoderReranker``), offline.

ragcun's retriever finds candidates (hybrid L2 + BM25); a ``ContextualCompressionRetriever`` hands them
to ``CrossEncoderReranker``, which reorders them by a ``HuggingFaceCrossEncoder`` and keeps ``top_n``,
metadata unchanged. The reranker returns documents without their scores; ask the cross-encoder
(``model.score``) for them, as below. A tiny random cross-encoder built here stands in for a real one, so
its order is arbitrary: pass a real model's name (e.g. ``model_name="cross-encoder/ms-marco-MiniLM-L-6-v2"``).

Run: HF_HUB_OFFLINE=1 python examples/langchain_rerank.py
"""
from __future__ import annotations

import tempfile

from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_classic.retrievers.document_compressors import CrossEncoderReranker
from langchain_community.cross_encoders import HuggingFaceCrossEncoder
from tiny_cross_encoder import build_tiny_cross_encoder

from langchain_ragcun import GaussianEmbeddings, GaussianVectorStore

texts = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris.",
    "Photosynthesis turns light into chemical energy in plants.",
    "Chlorophyll absorbs red and blue light in leaves.",
    "Python is a popular language for data science.",
    "Mitochondria produce most of the cell's ATP.",
]
metadatas = [{"topic": "travel"}, {"topic": "biology"}, {"topic": "biology"}, {"topic": "code"}, {"topic": "biology"}]
db = GaussianVectorStore.from_texts(texts, GaussianEmbeddings(), metadatas=metadatas)
query = "How do plants use sunlight?"

for doc, score in db.similarity_search_with_relevance_scores(query, k=4):
    print(f"retrieved: ragcun={score:.3f}  {doc.page_content}")

with tempfile.TemporaryDirectory() as folder:
    model = HuggingFaceCrossEncoder(model_name=build_tiny_cross_encoder(folder))
    retriever = ContextualCompressionRetriever(base_compressor=CrossEncoderReranker(model=model, top_n=2),
                                               base_retriever=db.as_retriever(search_kwargs={"k": 4}))
    docs = retriever.invoke(query)
    for doc, score in zip(docs, model.score([(query, d.page_content) for d in docs])):
        print(f"reranked: cross-encoder={score:.3f}  topic={doc.metadata['topic']}  {doc.page_content}")
