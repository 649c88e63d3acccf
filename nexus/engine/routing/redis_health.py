"""Target health shared by every gateway process through Redis.

Each process serves reads from its local copy and records outcomes locally at
once, so its own requests react to a failure immediately. A background task calls
`sync` every few hundred milliseconds: one pipelined round trip sends the outcomes
recorded since the last sync to a Lua script, which applies the breaker rules to the
shared record atomically and returns it; the returned record replaces the local copy.
Other processes therefore see a breaker open or close within one sync period.

NOTE: half-open probes are claimed per process, so with N gateway processes up to N
probes may reach a half-open target at once; the first outcome to arrive decides.
"""

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
import redis.asyncio as aioredis

from nexus.engine.routing.health import (
    HALF_OPEN,
    BreakerConfig,
    BreakerState,
    HealthBackend,
)
from nexus.engine.routing.outcomes import Outcome, counts_as_failure

logger = logging.getLogger(__name__)

KEY_PREFIX = "nexus:routing:health:"
# Outcomes kept per target while Redis is unreachable; older ones are dropped.
MAX_PENDING = 1000

# KEYS[1]: the target's hash. ARGV: now, bucket_seconds, window_seconds,
# min_requests, error_rate, consecutive_failures, cooldown_seconds,
# max_cooldown_seconds, latency_alpha, ttl_seconds, outcomes as a JSON array of
# [failed 0/1, ok 0/1, latency_ms, at, retry_after or -1, headroom or -1].
# The rules are those of BreakerState.apply and BreakerState.tick.
SYNC_SCRIPT = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local bucket_seconds = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local min_requests = tonumber(ARGV[4])
local error_rate = tonumber(ARGV[5])
local consecutive_limit = tonumber(ARGV[6])
local base_cooldown = tonumber(ARGV[7])
local max_cooldown = tonumber(ARGV[8])
local alpha = tonumber(ARGV[9])
local ttl = tonumber(ARGV[10])
local outcomes = cjson.decode(ARGV[11])

local h = {}
local raw = redis.call('HGETALL', key)
for i = 1, #raw, 2 do h[raw[i]] = raw[i + 1] end
if #outcomes == 0 and #raw == 0 then return {} end

local state = h['state'] or 'closed'
local consecutive = tonumber(h['consecutive'] or '0')
local open_until = tonumber(h['open_until'] or '0')
local cooldown = tonumber(h['cooldown'] or '0')
local buckets = {}
for field, value in pairs(h) do
  local index, kind = string.match(field, '^b:(-?%d+):(%a)$')
  if index then
    buckets[field] = tonumber(value)
  end
end

local function tick(t)
  if state == 'open' and t >= open_until then state = 'half_open' end
end

local function counts(t)
  local oldest = math.floor((t - window) / bucket_seconds)
  local ok, failed = 0, 0
  for field, value in pairs(buckets) do
    local index, kind = string.match(field, '^b:(-?%d+):(%a)$')
    if tonumber(index) > oldest then
      if kind == 'f' then failed = failed + value else ok = ok + value end
    end
  end
  return ok + failed, failed
end

local function open(t, seconds)
  state = 'open'
  h['opened_at'] = tostring(t)
  cooldown = seconds
  open_until = t + seconds
end

for _, outcome in ipairs(outcomes) do
  local failed, ok, latency, at = outcome[1] == 1, outcome[2] == 1, outcome[3], outcome[4]
  tick(at)
  if ok then
    local previous = tonumber(h['latency'] or '-1')
    if previous < 0 then h['latency'] = tostring(latency)
    else h['latency'] = tostring(previous + alpha * (latency - previous)) end
    h['latency_at'] = tostring(at)
  end
  if outcome[5] >= 0 then
    local until_at = at + outcome[5]
    if until_at > tonumber(h['retry_after_until'] or '0') then
      h['retry_after_until'] = tostring(until_at)
    end
  end
  if outcome[6] >= 0 then
    h['headroom'] = tostring(outcome[6])
    h['headroom_at'] = tostring(at)
  end
  local field = 'b:' .. math.floor(at / bucket_seconds) .. ':' .. (failed and 'f' or 's')
  buckets[field] = (buckets[field] or 0) + 1
  if state == 'half_open' then
    if failed then
      open(at, math.min(max_cooldown, 2 * math.max(cooldown, base_cooldown / 2)))
    else
      state = 'closed'
      buckets = {}
      consecutive = 0
      open_until = 0
      cooldown = 0
    end
  else
    if failed then consecutive = consecutive + 1 else consecutive = 0 end
    if state == 'closed' and failed then
      local total, failures = counts(at)
      if consecutive >= consecutive_limit
        or (total >= min_requests and failures / total >= error_rate) then
        open(at, base_cooldown)
      end
    end
  end
end
tick(now)

local oldest = math.floor((now - window) / bucket_seconds)
local stale = {}
for field, _ in pairs(h) do
  local index = string.match(field, '^b:(-?%d+):%a$')
  if index and (buckets[field] == nil or tonumber(index) <= oldest) then
    table.insert(stale, field)
  end
end
for _, field in ipairs(stale) do
  h[field] = nil
  redis.call('HDEL', key, field)
end
for field, value in pairs(buckets) do
  local index = string.match(field, '^b:(-?%d+):%a$')
  if tonumber(index) > oldest then h[field] = tostring(value) end
end
h['state'] = state
h['consecutive'] = tostring(consecutive)
h['open_until'] = tostring(open_until)
h['cooldown'] = tostring(cooldown)
local flat = {}
for field, value in pairs(h) do
  table.insert(flat, field)
  table.insert(flat, value)
end
redis.call('HSET', key, unpack(flat))
redis.call('EXPIRE', key, ttl)
return flat
"""


def state_from_hash(data: Mapping[Any, Any]) -> BreakerState:
    """Build a BreakerState from a stored Redis hash (bytes or str fields)."""
    fields = {_text(name): _text(value) for name, value in data.items()}
    state = BreakerState(
        state=fields.get("state", "closed"),
        consecutive_failures=int(float(fields.get("consecutive", "0"))),
        open_until=float(fields.get("open_until", "0")),
        opened_at=float(fields.get("opened_at", "0")),
        cooldown_seconds=float(fields.get("cooldown", "0")),
        retry_after_until=float(fields.get("retry_after_until", "0")),
    )
    if "latency" in fields:
        state.latency_ms = float(fields["latency"])
        state.latency_at = float(fields.get("latency_at", "0"))
    if "headroom" in fields:
        state.headroom = float(fields["headroom"])
        state.headroom_at = float(fields.get("headroom_at", "0"))
    for name, value in fields.items():
        if not name.startswith("b:"):
            continue
        _, index, kind = name.split(":")
        counts = state.buckets.setdefault(int(index), [0, 0])
        counts[1 if kind == "f" else 0] += int(float(value))
    return state


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def sync_arguments(
    config: BreakerConfig, now: float, outcomes: list[Outcome]
) -> list[Any]:
    """Return the ARGV of SYNC_SCRIPT for one target."""
    encoded = [
        [
            1 if counts_as_failure(outcome.ok, outcome.status) else 0,
            1 if outcome.ok else 0,
            outcome.latency_ms,
            outcome.at,
            -1 if outcome.retry_after is None else outcome.retry_after,
            -1 if outcome.headroom is None else outcome.headroom,
        ]
        for outcome in outcomes
    ]
    ttl = int(2 * max(config.window_seconds, config.max_cooldown_seconds)) + 60
    return [
        repr(now),
        repr(config.bucket_seconds),
        repr(config.window_seconds),
        config.min_requests,
        repr(config.error_rate),
        config.consecutive_failures,
        repr(config.cooldown_seconds),
        repr(config.max_cooldown_seconds),
        repr(config.latency_alpha),
        ttl,
        orjson.dumps(encoded),
    ]


class RedisHealth(HealthBackend):
    """Health shared through Redis hashes, one per target, under KEY_PREFIX."""

    def __init__(
        self,
        url: str,
        config: BreakerConfig | None = None,
        clock: Callable[[], float] = time.time,
        key_prefix: str = KEY_PREFIX,
    ) -> None:
        super().__init__(config, clock)
        self.url = url
        self.key_prefix = key_prefix
        self.pending: dict[str, list[Outcome]] = {}
        self.client: aioredis.Redis | None = None
        self.script: Any = None

    def record(self, target_id: str, outcome: Outcome) -> None:
        """Count the outcome locally now and queue it for the next sync."""
        outcome = self.stamp(outcome)
        super().record(target_id, outcome)
        queue = self.pending.setdefault(target_id, [])
        queue.append(outcome)
        if len(queue) > MAX_PENDING:
            del queue[: len(queue) - MAX_PENDING]

    def reset(self, target_id: str) -> None:
        super().reset(target_id)
        self.pending.pop(target_id, None)

    async def sync(self, target_ids: Iterable[str] = ()) -> None:
        """Send queued outcomes and refresh the local copies of the given targets.

        Targets with new outcomes are refreshed too. Raises redis.RedisError when
        Redis is unreachable; the queued outcomes are kept for the next attempt.
        """
        sent, self.pending = self.pending, {}
        names = sorted(set(sent) | set(target_ids))
        if not names:
            return
        now = self.clock()
        try:
            results = await self._run(names, sent, now)
        except Exception:
            for name, outcomes in sent.items():
                self.pending[name] = outcomes + self.pending.get(name, [])
            raise
        for name, flat in zip(names, results, strict=True):
            self._merge(name, flat, now)

    async def _run(
        self, names: list[str], sent: dict[str, list[Outcome]], now: float
    ) -> list[Any]:
        if self.client is None:
            self.client = aioredis.Redis.from_url(self.url, socket_timeout=2)
            self.script = self.client.register_script(SYNC_SCRIPT)
        pipeline = self.client.pipeline(transaction=False)
        for name in names:
            await self.script(
                keys=[self.key_prefix + name],
                args=sync_arguments(self.config, now, sent.get(name, [])),
                client=pipeline,
            )
        return await pipeline.execute()

    def _merge(self, name: str, flat: list[Any], now: float) -> None:
        # An empty reply means no record: expired, or reset from the admin.
        remote = state_from_hash(dict(zip(flat[::2], flat[1::2], strict=True)))
        local = self.states.get(name)
        if (
            local is not None
            and local.state == HALF_OPEN
            and local.probe_owner
            and remote.state == HALF_OPEN
        ):
            remote.probe_owner, remote.probe_at = local.probe_owner, local.probe_at
        # Outcomes recorded while the script ran are not in the returned record yet.
        for outcome in self.pending.get(name, []):
            remote.apply(outcome, self.config)
        remote.tick(now)
        self.states[name] = remote

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None
