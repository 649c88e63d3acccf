"""Vector indexes for the semantic cache, all behind VectorIndex."""
