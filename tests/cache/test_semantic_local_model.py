"""The bundled MiniLM model: paraphrases hit and unrelated prompts miss.

Runs on the embedded numpy index and on PostgreSQL with pgvector, both through the
gateway and directly against the semantic index.
"""

import threading
import time

import pytest

from nexus.engine.cache.config import SemanticSettings
from nexus.engine.cache.embedders import LocalEmbedder, local_model_available
from nexus.engine.cache.keys import SemanticQuery
from nexus.engine.cache.semantic import SemanticIndex
from nexus.engine.cache.vectors.base import VectorEntry
from nexus.engine.cache.vectors.numpy_index import NumpyIndex
from tests.cache.conftest import chat_body, make_index

pytestmark = pytest.mark.skipif(
    not local_model_available(),
    reason="the local embedding model is not installed (requirements-embeddings.txt)",
)

CACHED = {
    "What is the capital of France?": [
        "Which city is the capital of France?",
        "Tell me the capital city of France.",
    ],
    "How do I reset my password?": [
        "How can I reset my password?",
        "I forgot my password, how do I reset it?",
    ],
    "Explain how photosynthesis works.": ["How does photosynthesis work?"],
}
UNRELATED = [
    "What is the capital of Germany?",
    "What is the population of France?",
    "How do I bake sourdough bread?",
    "How do I change my username?",
    "Explain how a car engine works.",
    "Write a haiku about winter.",
]


@pytest.fixture(scope="module")
def embedder():
    return LocalEmbedder()


@pytest.fixture(params=["numpy", "pgvector"])
async def semantic_index(request, embedder):
    if request.param == "numpy":
        backend = NumpyIndex()
    else:
        from nexus.engine.cache.vectors.pgvector import PgVectorIndex

        backend = PgVectorIndex(request.getfixturevalue("pgvector_url"))
    settings = SemanticSettings(
        index=f"local_{request.param}_{int(time.time() * 1000)}",
        embedding_model="local",
        dimensions=0,
        backend=request.param,
        timeout_seconds=30,
    )
    await embedder.ready()
    yield SemanticIndex(settings, embedder, backend)
    await backend.close()


async def fill(index: SemanticIndex, scope: str) -> None:
    for number, prompt in enumerate(CACHED):
        lookup = await index.lookup(SemanticQuery(scope, prompt), time.time())
        entry = VectorEntry(
            entry_id=f"{number:064x}",
            scope=scope,
            org_id=1,
            vector=lookup.vector,
            payload=prompt.encode(),
            expires_at=time.time() + 60,
        )
        await index.store(lookup.spec, entry)


async def test_paraphrases_hit_their_own_prompt(semantic_index):
    await fill(semantic_index, "scope-1")

    for prompt, paraphrases in CACHED.items():
        for paraphrase in paraphrases:
            lookup = await semantic_index.lookup(
                SemanticQuery("scope-1", paraphrase), time.time()
            )
            assert lookup.outcome == "hit", paraphrase
            assert lookup.match.payload == prompt.encode(), paraphrase
            assert lookup.match.similarity >= 0.9


async def test_unrelated_prompts_miss(semantic_index):
    await fill(semantic_index, "scope-1")

    for prompt in UNRELATED:
        lookup = await semantic_index.lookup(
            SemanticQuery("scope-1", prompt), time.time()
        )
        assert lookup.outcome == "miss", prompt


async def test_paraphrase_in_another_scope_misses(semantic_index):
    await fill(semantic_index, "scope-1")

    lookup = await semantic_index.lookup(
        SemanticQuery("scope-2", "Which city is the capital of France?"), time.time()
    )

    assert lookup.outcome == "miss"


async def test_model_runs_on_a_worker_thread(embedder, monkeypatch):
    await embedder.ready()
    threads = []
    encode = embedder.model.encode

    def recording(*args, **kwargs):
        threads.append(threading.current_thread())
        return encode(*args, **kwargs)

    monkeypatch.setattr(embedder.model, "encode", recording)

    vectors = await embedder.embed(["hello there"])

    assert vectors.shape == (1, 384)
    assert threads and threads[0] is not threading.main_thread()
    assert threads[0].name.startswith("nexus-embed")


@pytest.mark.parametrize("backend", ["numpy", "pgvector"])
def test_gateway_serves_paraphrase_from_local_model(cache, backend, request, settings):
    if backend == "pgvector":
        settings.NEXUS_CACHE_PGVECTOR_URL = request.getfixturevalue("pgvector_url")
    index = make_index(backend=backend, embedding_model="local")
    cache.policy(semantic_index=index)
    warm_up = cache.post(chat_body("warming up the model", cache.chat, temperature=0))
    assert warm_up.status_code == 200
    cache.gateway.run(cache.layer.indexes[index.name].embedder.ready(), timeout=120)

    first = cache.post(
        chat_body("How do I reset my password?", cache.chat, temperature=0)
    )
    cache.drain()
    paraphrase = cache.post(
        chat_body("How can I reset my password?", cache.chat, temperature=0)
    )
    unrelated = cache.post(
        chat_body("How do I change my username?", cache.chat, temperature=0)
    )

    assert first.headers["x-nexus-cache"] == "miss"
    assert paraphrase.headers["x-nexus-cache"] == "semantic-hit"
    assert paraphrase.json()["choices"][0]["message"]["content"] == (
        "Echo: How do I reset my password?"
    )
    assert unrelated.headers["x-nexus-cache"] == "miss"
    assert cache.upstream_calls() == 3
