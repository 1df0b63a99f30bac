"""LangChain quickstart: swap in ragcun's embeddings and vector store (two lines), offline.

Run: HF_HUB_OFFLINE=1 python examples/langchain_quickstart.py
"""
from __future__ import annotations

import tempfile

from langchain_ragcun import GaussianEmbeddings, GaussianVectorStore

texts = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris.",
    "Photosynthesis turns light into chemical energy in plants.",
    "Python is a popular language for data science.",
    "Mitochondria produce most of the cell's ATP.",
]
metadatas = [{"topic": "travel"}, {"topic": "biology"}, {"topic": "code"}, {"topic": "biology"}]

embeddings = GaussianEmbeddings()  # line 1: the bundled Gaussian model
db = GaussianVectorStore.from_texts(texts, embeddings, metadatas=metadatas)  # line 2: the L2 store

for doc, score in db.similarity_search_with_relevance_scores("How do plants use sunlight?", k=2):
    print(f"score={score:.3f}  {doc.page_content}")
for doc, distance in db.similarity_search_with_score("How do plants use sunlight?", k=1):
    print(f"L2={distance:.2f}  {doc.page_content}")

print("filtered:", db.similarity_search("Which organelle makes ATP?", k=1, filter={"topic": "biology"})[0].page_content)
print("mmr:", [d.page_content for d in db.as_retriever(search_type="mmr", search_kwargs={"k": 2}).invoke("science")])
threshold = db.as_retriever(search_type="similarity_score_threshold", search_kwargs={"score_threshold": 0.5})
print("above 0.5:", [d.page_content for d in threshold.invoke("Paris landmark")])

with tempfile.TemporaryDirectory() as folder:
    db.save_local(folder)
    again = GaussianVectorStore.load_local(folder, embeddings)  # no allow_dangerous_deserialization needed
    print("reloaded:", again.similarity_search("Paris landmark", k=1)[0].page_content)
