"""In-flight request coalescing: identical concurrent requests share one upstream call.

The first request for a key leads a Flight; later ones with the same key follow it
and receive every canonical chunk of the leader's response, from the first one, as
it arrives. Within one process the table below is enough. With Redis, a lock per
key elects one leader across processes: the leader's process appends the chunks to a
Redis stream and followers in other processes relay that stream into a local Flight.
"""

import asyncio
import logging
import uuid
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

LOCK_PREFIX = "nexus:cache:flight:"
STREAM_PREFIX = "nexus:cache:flight-stream:"

# Deletes the lock only while it still names this flight.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Outcome:
    """How a flight ended: complete (with the response), failed or abandoned.

    Abandoned means the leader stopped without a response of its own making (its
    caller went away, or another process's leader went silent), so followers that
    have received nothing yet may start a new flight.
    """

    status: str
    answer: bytes | None = None
    error_code: str = ""
    http_status: int = 0

    def header(self) -> bytes:
        return orjson.dumps(
            {
                "status": self.status,
                "error_code": self.error_code,
                "http_status": self.http_status,
            }
        )

    @classmethod
    def read(cls, header: bytes, answer: bytes | None) -> "Outcome":
        data = orjson.loads(header)
        return cls(
            status=str(data.get("status", "abandoned")),
            answer=answer,
            error_code=str(data.get("error_code", "")),
            http_status=int(data.get("http_status", 0)),
        )


class Flight:
    """One shared upstream call: its chunks so far (serialized) and its outcome."""

    def __init__(self, key: str, leader_request_id: str = "") -> None:
        self.key = key
        self.id = uuid.uuid4().hex
        self.leader_request_id = leader_request_id
        self.chunks: list[bytes] = []
        self.outcome: Outcome | None = None
        self.followers = 0
        # Set when another process leads and this flight relays its Redis stream.
        self.relayed = False
        # Copies the chunks and the outcome to Redis while this process leads.
        self.publisher: asyncio.Task | None = None
        self._waiters: list[asyncio.Future] = []

    @property
    def done(self) -> bool:
        return self.outcome is not None

    def publish(self, chunk: bytes) -> None:
        """Append one serialized canonical chunk and wake the followers."""
        if self.outcome is None:
            self.chunks.append(chunk)
            self._wake()

    def finish(self, outcome: Outcome) -> None:
        """Record the outcome once; later calls change nothing."""
        if self.outcome is None:
            self.outcome = outcome
            self._wake()

    async def changed(self, seen: int, timeout: float | None = None) -> None:
        """Wait until there are more than `seen` chunks, the flight ended, or timeout."""
        if len(self.chunks) > seen or self.outcome is not None:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            pass
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()


class FlightTable:
    """The flights of this process by exact-cache key, optionally joined through Redis."""

    def __init__(self, relay: "RedisFlightRelay | None" = None) -> None:
        self.flights: dict[str, Flight] = {}
        self.relay = relay

    def join(self, key: str) -> Flight | None:
        """Return the running flight for key and count the caller as a follower."""
        flight = self.flights.get(key)
        if flight is None or flight.done:
            return None
        flight.followers += 1
        return flight

    def lead(self, key: str, request_id: str) -> Flight:
        """Start a flight for key in this process; the caller is its leader for now."""
        flight = Flight(key, request_id)
        self.flights[key] = flight
        return flight

    async def claim(self, flight: Flight) -> bool:
        """Return True if this process leads the flight across processes.

        Without Redis, or when Redis fails, the local leader leads. Otherwise, if
        another process has the lock of the key, the flight turns into a relay of that
        process's stream and the caller becomes one of its followers.
        """
        if self.relay is None:
            return True
        leads = await self.relay.claim(flight, self._forget)
        if not leads:
            flight.followers += 1
        return leads

    def end(self, flight: Flight, outcome: Outcome) -> None:
        """Finish the flight and remove it from the table."""
        flight.finish(outcome)
        self._forget(flight)

    async def end_published(self, flight: Flight, outcome: Outcome) -> None:
        """End the flight and wait until other processes can see how it ended."""
        self.end(flight, outcome)
        publisher = flight.publisher
        if publisher is not None and not publisher.done():
            await asyncio.wait([publisher], timeout=self.relay_timeout)

    @property
    def relay_timeout(self) -> float:
        return self.relay.timeout * 2 if self.relay is not None else 0.0

    def _forget(self, flight: Flight) -> None:
        if self.flights.get(flight.key) is flight:
            del self.flights[flight.key]

    async def close(self) -> None:
        for flight in list(self.flights.values()):
            self.end(flight, Outcome("abandoned"))
        if self.relay is not None:
            await self.relay.close()


class RedisFlightRelay:
    """Elect one leader per key across processes and carry its chunks over Redis.

    The leader sets `nexus:cache:flight:<key>` (value: the flight id and the
    leader's request id) and appends entries to the stream
    `nexus:cache:flight-stream:<flight id>`: `c` for a chunk, `h` for a heartbeat
    while the upstream call is silent, and `e` (with the response in `a`) at the end.
    A follower that reads no entry for `idle` seconds treats the flight as abandoned.
    """

    def __init__(
        self,
        url: str,
        *,
        heartbeat: float = 2.0,
        stream_ttl: float = 120.0,
        timeout: float = 1.0,
    ) -> None:
        self.heartbeat = heartbeat
        self.timeout = timeout
        self.idle = heartbeat * 3
        self.stream_ttl = stream_ttl
        self.client = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        # Blocking stream reads need a socket timeout longer than the block time.
        self.reader = aioredis.Redis.from_url(
            url, socket_timeout=self.idle + timeout, socket_connect_timeout=timeout
        )
        self.tasks: set[asyncio.Task] = set()

    async def claim(self, flight: Flight, forget) -> bool:
        lock = LOCK_PREFIX + flight.key
        try:
            holder = await self.client.set(
                lock,
                f"{flight.id} {flight.leader_request_id}",
                nx=True,
                px=int(self.idle * 1000),
                get=True,
            )
        except (RedisError, OSError) as exc:
            logger.warning("flight lock unavailable, leading locally: %s", exc)
            return True
        if holder is None:
            flight.publisher = self._spawn(self._publish(flight, lock))
            return True
        flight.relayed = True
        flight_id, _, flight.leader_request_id = holder.decode().partition(" ")
        self._spawn(self._follow(flight, flight_id, forget))
        return False

    def _spawn(self, work) -> asyncio.Task:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _publish(self, flight: Flight, lock: str) -> None:
        stream = STREAM_PREFIX + flight.id
        holder = f"{flight.id} {flight.leader_request_id}"
        sent = 0
        try:
            while True:
                await flight.changed(sent, self.heartbeat)
                outcome = flight.outcome
                pipe = self.client.pipeline(transaction=False)
                for chunk in flight.chunks[sent:]:
                    pipe.xadd(stream, {"c": chunk})
                if outcome is not None:
                    entry = {"e": outcome.header()}
                    if outcome.answer is not None:
                        entry["a"] = outcome.answer
                    pipe.xadd(stream, entry)
                elif len(flight.chunks) == sent:
                    pipe.xadd(stream, {"h": b"1"})
                sent = len(flight.chunks)
                pipe.expire(stream, int(self.stream_ttl))
                pipe.pexpire(lock, int(self.idle * 1000))
                await pipe.execute()
                if outcome is not None:
                    await self.client.eval(_RELEASE, 1, lock, holder)
                    return
        except (RedisError, OSError) as exc:
            logger.warning("flight %s stopped publishing: %s", flight.id, exc)

    async def _follow(self, flight: Flight, flight_id: str, forget) -> None:
        stream = STREAM_PREFIX + flight_id
        last = "0-0"
        try:
            while flight.outcome is None:
                batches = await self.reader.xread(
                    {stream: last}, block=int(self.idle * 1000), count=500
                )
                if not batches:
                    flight.finish(Outcome("abandoned"))
                    break
                for _, entries in batches:
                    for entry_id, fields in entries:
                        last = entry_id
                        self._apply(flight, fields)
        except (RedisError, OSError) as exc:
            logger.warning("flight relay %s failed: %s", flight_id, exc)
            flight.finish(Outcome("abandoned"))
        finally:
            forget(flight)

    @staticmethod
    def _apply(flight: Flight, fields: dict[bytes, bytes]) -> None:
        if b"c" in fields:
            flight.publish(fields[b"c"])
        elif b"e" in fields:
            flight.finish(Outcome.read(fields[b"e"], fields.get(b"a")))

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.client.aclose()
        await self.reader.aclose()
