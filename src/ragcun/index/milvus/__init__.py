"""The ``VectorIndex`` protocol on Milvus (Milvus Lite embedded, or a cluster by URI); pymilvus loads on first use."""
