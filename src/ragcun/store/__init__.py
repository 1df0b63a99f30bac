"""``DocStore``: records beside a ``VectorIndex`` and a BM25 index, searched dense, sparse or hybrid; the core
under both framework stores."""
