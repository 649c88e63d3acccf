"""Cache settings as the traffic plane reads them from the config snapshot."""

from dataclasses import dataclass, field

from nexus.engine.cache.keys import SemanticRules
from nexus.engine.snapshot import KeyEntry

SHARE_KEY = "key"
SHARE_PROJECT = "project"
SHARE_ORG = "org"


@dataclass(frozen=True)
class SemanticSettings:
    """One semantic index and how requests use it."""

    index: str
    # "local" for the bundled MiniLM model, else the name of a gateway embeddings model.
    embedding_model: str
    # Requested vector width for gateway models; 0 takes what the model returns.
    dimensions: int
    # numpy (in process), pgvector or redis.
    backend: str
    # Bumped by the admin action that drops the index.
    generation: int = 0
    threshold: float = 0.9
    ttl_seconds: int = 86_400
    timeout_seconds: float = 1.0
    breaker_threshold: int = 3
    breaker_cool_down: float = 30.0

    @property
    def identity(self) -> tuple:
        """The fields that need a new embedder or backend when they change."""
        return (self.index, self.embedding_model, self.dimensions, self.backend)


@dataclass(frozen=True)
class CachePolicy:
    """Cache settings for the requests one policy row matches."""

    id: int
    exact: bool = True
    ttl_seconds: int = 3600
    coalesce: bool = True
    # Who shares responses: each key alone, a project's keys, or an organization's keys.
    share: str = SHARE_PROJECT
    # Whether callers may send the x-nexus-cache request header.
    honor_headers: bool = True
    semantic: SemanticSettings | None = None
    semantic_rules: SemanticRules = SemanticRules()

    @property
    def active(self) -> bool:
        return self.exact or self.coalesce or self.semantic is not None


PolicyMap = dict[str, CachePolicy]


@dataclass(frozen=True)
class CacheConfig:
    """Every cache policy, purge generation and quarantined entry of a snapshot.

    Policy maps are keyed by model name, with "" for a row that names no model.
    """

    by_key: dict[int, PolicyMap] = field(default_factory=dict)
    by_project: dict[int, PolicyMap] = field(default_factory=dict)
    by_org: dict[int, PolicyMap] = field(default_factory=dict)
    everywhere: PolicyMap = field(default_factory=dict)
    # Purge generation per organization; global purges count for every org.
    generations: dict[int, int] = field(default_factory=dict)
    global_generation: int = 0
    quarantined: frozenset[str] = frozenset()

    def policy_for(self, key: KeyEntry, model: str) -> CachePolicy | None:
        """Return the most specific policy: key, then project, then org, then global.

        Within one level a row naming the model beats a row for every model.
        """
        levels = (
            self.by_key.get(key.id),
            self.by_project.get(key.project_id) if key.project_id else None,
            self.by_org.get(key.org_id),
            self.everywhere,
        )
        for policies in levels:
            if policies:
                policy = policies.get(model) or policies.get("")
                if policy is not None:
                    return policy
        return None

    def generation(self, org_id: int) -> int:
        return self.global_generation + self.generations.get(org_id, 0)


def tenant_scope(key: KeyEntry, share: str) -> str:
    """Return the scope inside which responses are shared for this key."""
    scope = f"org:{key.org_id}"
    if share == SHARE_ORG:
        return scope
    scope += f"/project:{key.project_id or '-'}"
    if share == SHARE_PROJECT:
        return scope
    return scope + f"/key:{key.id}"
