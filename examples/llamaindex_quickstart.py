"""LlamaIndex quickstart: swap in ragcun's embedding model and vector store (two lines), offline.

Run: HF_HUB_OFFLINE=1 python examples/llamaindex_quickstart.py
"""
from __future__ import annotations

import tempfile

from llama_index.core import Document, StorageContext, VectorStoreIndex, load_index_from_storage
from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters

from llama_index.embeddings.ragcun import GaussianEmbedding
from llama_index.vector_stores.ragcun import GaussianVectorStore

documents = [
    Document(text="The Eiffel Tower is a wrought-iron lattice tower in Paris.", metadata={"topic": "travel"}),
    Document(text="Photosynthesis turns light into chemical energy in plants.", metadata={"topic": "biology"}),
    Document(text="Python is a popular language for data science.", metadata={"topic": "code"}),
    Document(text="Mitochondria produce most of the cell's ATP.", metadata={"topic": "biology"}),
]

embed_model = GaussianEmbedding()  # line 1: the bundled Gaussian model
storage = StorageContext.from_defaults(vector_store=GaussianVectorStore(calibrator=embed_model))  # line 2: the L2 store; scores P(relevant)
index = VectorStoreIndex.from_documents(documents, storage_context=storage, embed_model=embed_model)

for hit in index.as_retriever(similarity_top_k=2).retrieve("How do plants use sunlight?"):
    print(f"score={hit.score:.3f}  L2={hit.node.metadata['l2_distance']:.2f}  {hit.node.get_content()}")

only_biology = MetadataFilters(filters=[MetadataFilter(key="topic", value="biology")])
hits = index.as_retriever(similarity_top_k=1, filters=only_biology).retrieve("Which organelle makes ATP?")
print("filtered:", hits[0].node.get_content())

with tempfile.TemporaryDirectory() as persist_dir:
    index.storage_context.persist(persist_dir=persist_dir)
    storage = StorageContext.from_defaults(persist_dir=persist_dir,
                                           vector_store=GaussianVectorStore.from_persist_dir(persist_dir))
    reloaded = load_index_from_storage(storage, embed_model=embed_model)
    print("reloaded:", reloaded.as_retriever(similarity_top_k=1).retrieve("Paris landmark")[0].node.get_content())
