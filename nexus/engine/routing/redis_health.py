"""Target health shared by every gateway process through Redis.

Each process serves reads from its local copy and records outcomes locally at
once, so its own requests react to a failure immediately. A background task calls
`sync` every few hundred milliseconds: one pipelined round trip sends the outcomes
recorded since the last sync to a Lua script, which applies the breaker rules to the
shared record atomically and returns it; the returned record replaces the local copy.
Other processes therefore see a breaker open or close within one sync period.

A half-open target gets one probe from the whole fleet, and `admit` still does no
I/O. A request that finds the target half-open, with no claimed probe known to be in
flight, only records that the target wants a probe and skips it. The next sync runs
CLAIM_SCRIPT for each such target in the same pipeline. The process that wins the
claim lets its next request to the target through as the probe, so the probe starts
within about one sync period after a request needed it. The other processes learn
the claim from the script's reply or from a later sync, and skip the target until
the probe's outcome reaches Redis, which closes or re-opens the breaker and clears
the claim. A won claim that no request uses lapses after `probe_timeout_seconds`.
While Redis is unreachable each process claims its own probe again, as MemoryHealth
does.
"""

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
import redis.asyncio as aioredis

from nexus.engine.routing.health import (
    CLOSED,
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
# The rules are those of BreakerState.apply and BreakerState.tick. Leaving half-open
# clears the probe claim (probe_owner, probe_at) that CLAIM_SCRIPT sets.
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

local function clear_probe()
  h['probe_owner'] = ''
  h['probe_at'] = '0'
end

local function tick(t)
  if state == 'open' and t >= open_until then
    state = 'half_open'
    clear_probe()
  end
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
  clear_probe()
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
      clear_probe()
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

# KEYS[1]: the target's hash. ARGV: owner, now, probe_timeout_seconds.
# Claims the probe for owner when the breaker is half-open (or open with its cooldown
# over) and no other owner's claim is younger than the timeout. An owner may renew
# its own claim. Returns the hash as HGETALL does, or an empty list if there is none.
CLAIM_SCRIPT = """
local key = KEYS[1]
local owner = ARGV[1]
local now = tonumber(ARGV[2])
local timeout = tonumber(ARGV[3])

local state = redis.call('HGET', key, 'state')
if not state then return {} end
local open_until = tonumber(redis.call('HGET', key, 'open_until') or '0')
if state == 'open' and now >= open_until then
  state = 'half_open'
  redis.call('HSET', key, 'state', state, 'probe_owner', '', 'probe_at', '0')
end
if state == 'half_open' then
  local holder = redis.call('HGET', key, 'probe_owner') or ''
  local claimed_at = tonumber(redis.call('HGET', key, 'probe_at') or '0')
  if holder == '' or holder == owner or now - claimed_at >= timeout then
    redis.call('HSET', key, 'probe_owner', owner, 'probe_at', ARGV[2])
  end
end
return redis.call('HGETALL', key)
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
        probe_owner=fields.get("probe_owner", ""),
        probe_at=float(fields.get("probe_at", "0")),
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
        self.claim_script: Any = None
        # Half-open targets that a request would have probed. The next sync claims them.
        self.requested_probes: set[str] = set()
        # Targets whose probe this process claimed and no request has sent yet.
        self.ready_probes: set[str] = set()
        # False from a failed sync until the next successful sync.
        self.shared_probes = True

    def admit(self, target_id: str) -> bool:
        """Return whether a request may go to the target now, without any I/O.

        A half-open target admits one request in the whole fleet, the probe. This
        process sends it only once a sync has won the probe's claim for it. Until
        then, and while no claimed probe is known to be in flight, this call adds
        the target to `requested_probes` for the next sync to claim, and the request
        skips the target. While Redis is unreachable, each process claims its own
        probe.
        """
        state = self.states.get(target_id)
        if state is None:
            return True
        now = self.clock()
        state.tick(now)
        if state.state != HALF_OPEN:
            return state.state == CLOSED
        if self._use_ready_probe(target_id, state, now):
            return True
        if not self.shared_probes:
            return self._claim_locally(state, now)

        if not state.probe_in_flight(now, self.config):
            self.requested_probes.add(target_id)
        return False

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
        self.requested_probes.discard(target_id)
        self.ready_probes.discard(target_id)

    async def sync(self, target_ids: Iterable[str] = ()) -> None:
        """Send queued outcomes, claim requested probes and refresh local copies.

        The given targets and those with new outcomes are refreshed. Each target in
        `requested_probes` gets a CLAIM_SCRIPT call in the same pipeline, and the
        claims this process wins go to `ready_probes`. Raises redis.RedisError when
        Redis is unreachable. The queued outcomes are then kept for the next
        attempt, and the requested probes are dropped because admit() claims probes
        locally until a sync succeeds.
        """
        sent, self.pending = self.pending, {}
        claims, self.requested_probes = sorted(self.requested_probes), set()
        names = sorted(set(sent) | set(target_ids))
        if not names and not claims:
            return
        now = self.clock()
        try:
            results = await self._run(names, sent, claims, now)
        except Exception as exc:
            for name, outcomes in sent.items():
                self.pending[name] = outcomes + self.pending.get(name, [])
            self._stop_sharing_probes(exc)
            raise

        for name, flat in zip(names + claims, results, strict=True):
            self._merge(name, flat, now)
        for name in claims:
            state = self.states[name]
            if state.state == HALF_OPEN and state.probe_owner == self.owner:
                self.ready_probes.add(name)
        if not self.shared_probes:
            self.shared_probes = True
            logger.info(
                "shared routing health works again, so half-open probes are "
                "claimed in Redis"
            )

    async def _run(
        self,
        names: list[str],
        sent: dict[str, list[Outcome]],
        claims: list[str],
        now: float,
    ) -> list[Any]:
        if self.client is None:
            self.client = aioredis.Redis.from_url(self.url, socket_timeout=2)
            self.script = self.client.register_script(SYNC_SCRIPT)
            self.claim_script = self.client.register_script(CLAIM_SCRIPT)
        pipeline = self.client.pipeline(transaction=False)
        for name in names:
            await self.script(
                keys=[self.key_prefix + name],
                args=sync_arguments(self.config, now, sent.get(name, [])),
                client=pipeline,
            )
        # Claims run after the outcomes, so they see the state those produced.
        for name in claims:
            await self.claim_script(
                keys=[self.key_prefix + name],
                args=[self.owner, repr(now), repr(self.config.probe_timeout_seconds)],
                client=pipeline,
            )
        return await pipeline.execute()

    def _use_ready_probe(self, target_id: str, state: BreakerState, now: float) -> bool:
        if target_id not in self.ready_probes:
            return False
        self.ready_probes.discard(target_id)
        # A claim left unused past the probe timeout may belong to another process.
        in_flight = state.probe_in_flight(now, self.config)
        if state.probe_owner != self.owner or not in_flight:
            return False
        state.probe_at = now
        return True

    def _claim_locally(self, state: BreakerState, now: float) -> bool:
        # Another process's claim is ignored: its outcome cannot reach this process
        # while Redis is unreachable.
        if state.probe_owner != self.owner:
            state.probe_owner = ""
        return state.claim_probe(self.owner, now, self.config)

    def _stop_sharing_probes(self, error: Exception) -> None:
        if not self.shared_probes:
            return
        self.shared_probes = False
        logger.warning(
            "shared routing health failed, so each process claims its own "
            "half-open probes until a health sync succeeds: %s",
            error,
        )

    def _merge(self, name: str, flat: list[Any], now: float) -> None:
        # An empty reply means no record: expired, or reset from the admin.
        remote = state_from_hash(dict(zip(flat[::2], flat[1::2], strict=True)))
        # Outcomes recorded while the script ran are not in the returned record yet.
        for outcome in self.pending.get(name, []):
            remote.apply(outcome, self.config)
        remote.tick(now)
        local = self.states.get(name)
        # A reply computed before this process claimed the probe, or before a request
        # used the claim, lacks the claim's current time. So the local claim is kept
        # while the probe is in flight.
        if (
            local is not None
            and local.state == HALF_OPEN
            and remote.state == HALF_OPEN
            and local.probe_owner == self.owner
            and local.probe_in_flight(now, self.config)
        ):
            remote.probe_owner, remote.probe_at = local.probe_owner, local.probe_at
        self.states[name] = remote
        if remote.state != HALF_OPEN or remote.probe_owner != self.owner:
            self.ready_probes.discard(name)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None
