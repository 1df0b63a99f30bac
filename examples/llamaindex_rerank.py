"""LlamaIndex: rerank ragcun's hits with a cross-encoder (``SentenceTransformerRerank``), offline.

ragcun's retriever finds candidates (hybrid L2 + BM25, scored ``P(relevant)``); the cross-encoder
reorders them and keeps ``top_n``. Each reranked node's score is the cross-encoder's; with
``keep_retrieval_score=True`` ragcun's score stays in ``metadata["retrieval_score"]``. A tiny random
cross-encoder built here stands in for a real one, so its order is arbitrary: pass a real model's name
(e.g. ``model="cross-encoder/ms-marco-MiniLM-L-6-v2"``) instead. In a query engine, pass the reranker
as ``index.as_query_engine(similarity_top_k=4, node_postprocessors=[rerank])``.

Run: HF_HUB_OFFLINE=1 python examples/llamaindex_rerank.py
"""
from __future__ import annotations

import tempfile

from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.postprocessor import SentenceTransformerRerank
from tiny_cross_encoder import build_tiny_cross_encoder

from llama_index.embeddings.ragcun import GaussianEmbedding
from llama_index.vector_stores.ragcun import GaussianVectorStore

documents = [
    Document(text="The Eiffel Tower is a wrought-iron lattice tower in Paris.", metadata={"topic": "travel"}),
    Document(text="Photosynthesis turns light into chemical energy in plants.", metadata={"topic": "biology"}),
    Document(text="Chlorophyll absorbs red and blue light in leaves.", metadata={"topic": "biology"}),
    Document(text="Python is a popular language for data science.", metadata={"topic": "code"}),
    Document(text="Mitochondria produce most of the cell's ATP.", metadata={"topic": "biology"}),
]
embed_model = GaussianEmbedding()
storage = StorageContext.from_defaults(vector_store=GaussianVectorStore(calibrator=embed_model))
index = VectorStoreIndex.from_documents(documents, storage_context=storage, embed_model=embed_model)
query = "How do plants use sunlight?"

hits = index.as_retriever(similarity_top_k=4).retrieve(query)
for hit in hits:
    print(f"retrieved: ragcun={hit.score:.3f}  {hit.node.get_content()}")

with tempfile.TemporaryDirectory() as folder:
    rerank = SentenceTransformerRerank(model=build_tiny_cross_encoder(folder), top_n=2, device="cpu",
                                       keep_retrieval_score=True)
    for hit in rerank.postprocess_nodes(hits, query_str=query):
        print(f"reranked: cross-encoder={hit.score:.3f}  ragcun={hit.node.metadata['retrieval_score']:.3f}  "
              f"topic={hit.node.metadata['topic']}  {hit.node.get_content()}")
