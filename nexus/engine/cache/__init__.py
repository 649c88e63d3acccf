"""Response caching for the traffic plane: exact, semantic and in-flight coalescing.

Everything here is framework-free. `keys` derives cache keys and semantic scopes,
`store` holds exact answers (Redis or process memory), `vectors` holds the semantic
indexes (numpy, pgvector, Redis/Valkey search), `flight` folds identical concurrent
requests into one upstream call, and `layer` runs the three around a request.
"""
