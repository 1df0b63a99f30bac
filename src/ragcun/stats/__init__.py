"""Statistics of embeddings: SIGReg (LeJEPA's sliced Epps-Pulley test), isotropy reports, distributed reduction."""
