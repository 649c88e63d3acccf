"""Deterministic embedding vectors for the fake embeddings endpoints.

Each lowercased word maps to a pseudo-random vector seeded by a hash of the word.
A text's embedding is the sum of its word vectors scaled to unit length, so equal
texts get equal vectors and texts that share words get a higher cosine similarity
than unrelated texts. Text without words maps to the first unit vector.
"""

import base64
import functools
import hashlib
import logging
import math
import random
import struct

logger = logging.getLogger(__name__)

DEFAULT_DIMENSIONS = 8
# Bounds the work one embeddings request can cause.
MAX_DIMENSIONS = 16384


def embed_text(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """Return the unit-length embedding of the text."""
    total = [0.0] * dimensions
    for word in text.lower().split():
        for index, value in enumerate(_word_vector(word, dimensions)):
            total[index] += value

    norm = math.sqrt(sum(value * value for value in total))
    if norm == 0.0:
        return [1.0] + [0.0] * (dimensions - 1)
    return [value / norm for value in total]


def encode_base64(vector: list[float]) -> str:
    """Encode the vector as base64 of little-endian float32 values."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


@functools.lru_cache(maxsize=8192)
def _word_vector(word: str, dimensions: int) -> tuple[float, ...]:
    seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest())
    rng = random.Random(seed)
    return tuple(rng.uniform(-1.0, 1.0) for _ in range(dimensions))
