"""The PostgreSQL vector index, using the pgvector extension.

One table per index (`nexus_semantic_<name>`) contains the entries; the table
`nexus_semantic_index` records each index's model, dimension and generation so
every gateway process agrees on when to rebuild. Vectors travel as pgvector's text
form, so no client-side adapter package is needed.
"""

import logging
import time

import numpy as np
import psycopg
from psycopg_pool import AsyncConnectionPool

from nexus.engine.cache.vectors.base import (
    IndexSpec,
    Match,
    VectorEntry,
    VectorIndex,
    VectorIndexError,
)

logger = logging.getLogger(__name__)

META_TABLE = "nexus_semantic_index"
SWEEP_SECONDS = 60.0


def vector_literal(vector: np.ndarray) -> str:
    return (
        "[" + ",".join(f"{value:.7g}" for value in np.asarray(vector).reshape(-1)) + "]"
    )


class PgVectorIndex(VectorIndex):
    """Cosine search with an HNSW index in PostgreSQL."""

    name = "pgvector"

    def __init__(
        self, url: str, *, max_connections: int = 4, timeout: float = 2.0
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            open=False,
            timeout=timeout,
            kwargs={"autocommit": True, "connect_timeout": max(1, int(timeout))},
        )
        self.opened = False
        self.swept_at: dict[str, float] = {}

    async def _connection(self):
        if not self.opened:
            await self.pool.open(wait=False)
            self.opened = True
        return self.pool.connection()

    @staticmethod
    def table(spec: IndexSpec) -> str:
        return f"nexus_semantic_{spec.name}"

    async def _execute(
        self, sql: str, params: tuple = (), *, missing_ok: bool = False
    ) -> list[tuple]:
        try:
            async with await self._connection() as connection:
                cursor = await connection.execute(sql, params)
                return await cursor.fetchall() if cursor.description else []
        except psycopg.errors.UndefinedTable as exc:
            if missing_ok:
                return []
            raise VectorIndexError(f"pgvector index table is missing: {exc}") from exc
        except (psycopg.Error, OSError) as exc:
            raise VectorIndexError(f"pgvector index call failed: {exc}") from exc

    async def ensure(self, spec: IndexSpec) -> bool:
        table = self.table(spec)
        try:
            async with await self._connection() as connection:
                async with connection.transaction():
                    await connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
                    await connection.execute(
                        f"CREATE TABLE IF NOT EXISTS {META_TABLE} (name text PRIMARY KEY, "
                        "model text NOT NULL, dimension integer NOT NULL, "
                        "generation integer NOT NULL)"
                    )
                    # One process at a time decides whether to rebuild this index.
                    await connection.execute(
                        "SELECT pg_advisory_xact_lock(hashtext(%s))", (table,)
                    )
                    cursor = await connection.execute(
                        f"SELECT model, dimension, generation FROM {META_TABLE} "
                        "WHERE name = %s",
                        (spec.name,),
                    )
                    row = await cursor.fetchone()
                    if row is not None and (
                        row[2] > spec.generation
                        or row
                        == (
                            spec.model,
                            spec.dimension,
                            spec.generation,
                        )
                    ):
                        return False
                    await self._create(connection, spec, table)
                    return True
        except (psycopg.Error, OSError) as exc:
            raise VectorIndexError(f"pgvector index setup failed: {exc}") from exc

    async def _create(self, connection, spec: IndexSpec, table: str) -> None:
        await connection.execute(f"DROP TABLE IF EXISTS {table}")
        await connection.execute(
            f"CREATE TABLE {table} (id text PRIMARY KEY, scope text NOT NULL, "
            "org_id bigint NOT NULL, expires_at double precision NOT NULL, "
            f"payload bytea NOT NULL, embedding vector({spec.dimension}) NOT NULL)"
        )
        await connection.execute(f"CREATE INDEX ON {table} (scope)")
        await connection.execute(
            f"CREATE INDEX ON {table} USING hnsw (embedding vector_cosine_ops)"
        )
        await connection.execute(
            f"INSERT INTO {META_TABLE} (name, model, dimension, generation) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET "
            "model = EXCLUDED.model, dimension = EXCLUDED.dimension, "
            "generation = EXCLUDED.generation",
            (spec.name, spec.model, spec.dimension, spec.generation),
        )
        logger.info(
            "semantic index %s created for %s (%s dimensions)",
            spec.name,
            spec.model,
            spec.dimension,
        )

    async def search(self, spec, scope, vector, threshold, now) -> Match | None:
        literal = vector_literal(vector)
        # NOTE: with the HNSW index, PostgreSQL filters by scope after the graph
        # search, so a small scope in a large table may miss its nearest entry.
        # The scope index lets the planner choose an exact scan for small scopes.
        rows = await self._execute(
            f"SELECT id, payload, 1 - (embedding <=> %s::vector) FROM {self.table(spec)} "
            "WHERE scope = %s AND expires_at > %s "
            "ORDER BY embedding <=> %s::vector LIMIT 1",
            (literal, scope, now, literal),
        )
        if not rows or float(rows[0][2]) < threshold:
            return None
        entry_id, payload, similarity = rows[0]
        return Match(entry_id, float(similarity), bytes(payload))

    async def add(self, spec: IndexSpec, entry: VectorEntry) -> None:
        table = self.table(spec)
        await self._execute(
            f"INSERT INTO {table} (id, scope, org_id, expires_at, payload, embedding) "
            "VALUES (%s, %s, %s, %s, %s, %s::vector) ON CONFLICT (id) DO UPDATE SET "
            "scope = EXCLUDED.scope, org_id = EXCLUDED.org_id, "
            "expires_at = EXCLUDED.expires_at, payload = EXCLUDED.payload, "
            "embedding = EXCLUDED.embedding",
            (
                entry.entry_id,
                entry.scope,
                entry.org_id,
                entry.expires_at,
                entry.payload,
                vector_literal(entry.vector),
            ),
        )
        now = time.time()
        if now - self.swept_at.get(table, 0.0) > SWEEP_SECONDS:
            self.swept_at[table] = now
            await self._execute(f"DELETE FROM {table} WHERE expires_at <= %s", (now,))

    async def delete(self, spec: IndexSpec, entry_id: str) -> None:
        await self._execute(
            f"DELETE FROM {self.table(spec)} WHERE id = %s",
            (entry_id,),
            missing_ok=True,
        )

    async def purge(self, spec: IndexSpec, org_id: int | None) -> int:
        table = self.table(spec)
        if org_id is None:
            rows = await self._execute(
                f"DELETE FROM {table} RETURNING 1", missing_ok=True
            )
        else:
            rows = await self._execute(
                f"DELETE FROM {table} WHERE org_id = %s RETURNING 1",
                (org_id,),
                missing_ok=True,
            )
        return len(rows)

    async def drop(self, spec: IndexSpec) -> None:
        await self._execute(f"DROP TABLE IF EXISTS {self.table(spec)}")
        await self._execute(
            f"DELETE FROM {META_TABLE} WHERE name = %s", (spec.name,), missing_ok=True
        )

    async def count(self, spec: IndexSpec) -> int:
        rows = await self._execute(
            f"SELECT count(*) FROM {self.table(spec)}", missing_ok=True
        )
        return int(rows[0][0]) if rows else 0

    async def close(self) -> None:
        if self.opened:
            await self.pool.close()
            self.opened = False
