"""Rate limits: token buckets in Redis, shared by every API process, one round trip per request
that may pass; a request this process can already tell is over its limit costs no round trip.

Every authenticated request takes a token from its API key's (or JWT subject's) bucket and from
its tenant's; when either is empty the answer is a 429 with `Retry-After`, and every answer of a
rate-limited route carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds
until the bucket is full again) for the tighter of the two buckets. Credentials that fail take a
token from their client IP's bucket; while that one is empty, a key that would need a database
lookup from that IP is a 429 (keys already known to this process keep working). A heavy read
(app/deps.py: a preview, a search, a list with many filters) takes tokens from its tenant's
heavy-read bucket, more for a larger predicate.

A bucket refills continuously (`rate` tokens a second up to `burst`), so a client may burst and
then keeps its steady rate. Redis being down (or a round trip taking over a second, as it does on
an overloaded process) must not take the API down with it, nor lift the limits: for a few seconds
Redis is not asked, and each process enforces the limits on its own buckets (its mirrors, below).

Redis is the authority. Each process keeps a mirror of the buckets it has asked about: their
tokens after its last round trip and when, refilled locally since. Other processes only ever take
tokens out, so the mirror can only overestimate what Redis holds: when the mirror is already short,
Redis would refuse too, and the 429 (with the same headers) is answered from memory. A burst far
above a limit then costs microseconds a request instead of a Redis round trip each.
"""

import asyncio
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.config import Settings
from app.errors import TooManyRequests

log = structlog.get_logger("pim.ratelimit")

RETRY_REDIS_AFTER_S = 5.0
REDIS_TIMEOUT_S = (
    1.0  # a hung Redis must not hold every request for the client's 5 s socket timeout
)

# KEYS: the buckets. ARGV[1]: now in ms; ARGV[2]: 'take' (`cost` tokens from each if every bucket
# holds them), 'peek' (nothing taken; allowed while each holds `cost`) or 'charge' (`cost` from each,
# down to 0, no check); ARGV[3]: cost; then burst and rate per second of each bucket. A bucket is a
# hash {t: tokens, ts: last update in ms} that expires once it would be full again. Returns
# {allowed, burst, whole tokens left, ms until full, ms until enough tokens are back} of the bucket
# with the fewest tokens left, then each bucket's tokens after the call (as text: exact fractions).
_TOKEN_BUCKETS = """
local now = tonumber(ARGV[1])
local mode = ARGV[2]
local cost = tonumber(ARGV[3])
local tokens, bursts, rates = {}, {}, {}
local allowed = 1
for i = 1, #KEYS do
  local burst = tonumber(ARGV[2 + 2 * i])
  local rate = tonumber(ARGV[3 + 2 * i])
  local state = redis.call('HMGET', KEYS[i], 't', 'ts')
  local t = tonumber(state[1]) or burst
  local ts = tonumber(state[2]) or now
  if now > ts then t = math.min(burst, t + (now - ts) * rate / 1000) end
  tokens[i], bursts[i], rates[i] = t, burst, rate
  if t < cost then allowed = 0 end
end
if mode == 'charge' or (mode == 'take' and allowed == 1) then
  for i = 1, #KEYS do tokens[i] = math.max(0, tokens[i] - cost) end
end
if mode ~= 'peek' then
  for i = 1, #KEYS do
    redis.call('HSET', KEYS[i], 't', tostring(tokens[i]), 'ts', tostring(now))
    redis.call('PEXPIRE', KEYS[i], math.ceil((bursts[i] - tokens[i]) * 1000 / rates[i]) + 1000)
  end
end
local low = 1
for i = 2, #KEYS do if tokens[i] < tokens[low] then low = i end end
local retry = 0
for i = 1, #KEYS do
  if tokens[i] < cost then
    retry = math.max(retry, math.ceil((cost - tokens[i]) * 1000 / rates[i]))
  end
end
local answer = {allowed, bursts[low], math.floor(tokens[low]),
  math.ceil((bursts[low] - tokens[low]) * 1000 / rates[low]), retry}
for i = 1, #KEYS do answer[5 + i] = tostring(tokens[i]) end
return answer
"""
# mirrors a process keeps at most; past that they are forgotten (the next request asks Redis)
MAX_MIRRORS = 100_000


@dataclass(frozen=True, slots=True)
class Quota:
    """What the tightest bucket says about one request."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after_seconds: int

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset_seconds).encode()),
        ]


@dataclass(frozen=True, slots=True)
class Bucket:
    key: str
    burst: int
    rate: float


@dataclass(slots=True)
class _Mirror:
    """A bucket's tokens as Redis left them after this process's last round trip, and when (ms)."""

    tokens: float
    at_ms: int


class RateLimiter:
    def __init__(self, redis: Redis, settings: Settings):
        self.enabled = settings.rate_limit_enabled
        self._settings = settings
        self._script = redis.register_script(_TOKEN_BUCKETS)
        self._redis_down_until = 0.0
        self._mirrors: dict[str, _Mirror] = {}

    def _request_buckets(self, tenant_id: int, subject: str) -> list[Bucket]:
        s = self._settings
        return [
            Bucket(
                f"pim:rl:key:{tenant_id}:{subject[:200]}",
                s.rate_limit_key_burst,
                s.rate_limit_key_per_second,
            ),
            Bucket(
                f"pim:rl:tenant:{tenant_id}",
                s.rate_limit_tenant_burst,
                s.rate_limit_tenant_per_second,
            ),
        ]

    def _ip_bucket(self, ip: str) -> list[Bucket]:
        s = self._settings
        return [
            Bucket(
                f"pim:rl:auth-failures:{ip}",
                s.auth_failures_per_ip_burst,
                s.auth_failures_per_ip_per_second,
            )
        ]

    def _mirrored_tokens(self, bucket: Bucket, now_ms: int) -> float | None:
        """The bucket's tokens as this process's mirror has them now (refilled since), or None."""
        mirror = self._mirrors.get(bucket.key)
        if mirror is None:
            return None
        elapsed = max(0, now_ms - mirror.at_ms)
        return min(bucket.burst, mirror.tokens + elapsed * bucket.rate / 1000)

    @staticmethod
    def _quota(buckets: list[Bucket], tokens: list[float], cost: int, allowed: bool) -> Quota:
        """What the tightest of these buckets, holding `tokens`, says (as the script computes it)."""
        low = min(range(len(buckets)), key=tokens.__getitem__)
        retry_ms = max(
            (math.ceil((cost - t) * 1000 / b.rate) for t, b in zip(tokens, buckets) if t < cost),
            default=0,
        )
        return Quota(
            allowed,
            buckets[low].burst,
            math.floor(tokens[low]),
            math.ceil(
                math.ceil((buckets[low].burst - tokens[low]) * 1000 / buckets[low].rate) / 1000
            ),
            math.ceil(retry_ms / 1000),
        )

    def _refused_from_mirror(self, buckets: list[Bucket], now_ms: int, cost: int) -> Quota | None:
        """The 429 Redis would answer, when this process's mirrors of the buckets show it already
        (each mirror holds at least what Redis does); None when Redis must be asked."""
        tokens = []
        for bucket in buckets:
            mirrored = self._mirrored_tokens(bucket, now_ms)
            if mirrored is None:
                return None
            tokens.append(mirrored)
        if all(t >= cost for t in tokens):
            return None
        return self._quota(buckets, tokens, cost, False)

    def _run_locally(self, buckets: list[Bucket], mode: str, cost: int, now_ms: int) -> Quota:
        """The script's answer computed on this process's mirrors, while Redis cannot be asked: a
        bucket this process has not seen starts full. Each process then enforces the limits on its
        own (a client spread over N processes gets up to N times them) instead of none at all: an
        overloaded process, whose round trips time out on its own event loop, would otherwise
        lift every limit (heavy reads included) exactly while a client floods it."""
        tokens = [
            t if (t := self._mirrored_tokens(b, now_ms)) is not None else float(b.burst)
            for b in buckets
        ]
        allowed = all(t >= cost for t in tokens)
        if mode == "charge" or (mode == "take" and allowed):
            tokens = [max(0.0, t - cost) for t in tokens]
        if mode != "peek":
            self._remember(buckets, tokens, now_ms)
        return self._quota(buckets, tokens, cost, allowed)

    def _remember(self, buckets: list[Bucket], tokens: list, now_ms: int) -> None:
        if len(self._mirrors) >= MAX_MIRRORS:
            self._mirrors.clear()  # a lost mirror only means one more round trip
        for bucket, left in zip(buckets, tokens):
            self._mirrors[bucket.key] = _Mirror(float(left), now_ms)

    async def _run(self, buckets: list[Bucket], mode: str, cost: int = 1) -> Quota | None:
        """The buckets' answer, or None when limits are off."""
        if not self.enabled:
            return None
        now_ms = int(time.time() * 1000)
        if mode != "charge":
            refused = self._refused_from_mirror(buckets, now_ms, cost)
            if refused is not None:
                return refused
        if time.monotonic() < self._redis_down_until:
            return self._run_locally(buckets, mode, cost, now_ms)
        args: list = [now_ms, mode, cost]
        for bucket in buckets:
            args += [bucket.burst, bucket.rate]
        try:
            allowed, limit, remaining, reset_ms, retry_ms, *tokens = await asyncio.wait_for(
                self._script(keys=[b.key for b in buckets], args=args), REDIS_TIMEOUT_S
            )
        except (RedisError, OSError) as exc:  # TimeoutError is an OSError
            self._redis_down_until = time.monotonic() + RETRY_REDIS_AFTER_S
            log.warning(
                "rate_limits_enforced_per_process",
                reason="redis unavailable",
                error=f"{type(exc).__name__}: {exc}"[:300],
                retry_in_s=RETRY_REDIS_AFTER_S,
            )
            return self._run_locally(buckets, mode, cost, now_ms)
        self._remember(buckets, tokens, now_ms)
        return Quota(
            bool(allowed),
            int(limit),
            int(remaining),
            math.ceil(reset_ms / 1000),
            math.ceil(retry_ms / 1000),
        )

    async def take(self, tenant_id: int, subject: str) -> Quota | None:
        """One request of this key/subject and tenant."""
        return await self._run(self._request_buckets(tenant_id, subject), "take")

    def _heavy_bucket(self, tenant_id: int) -> list[Bucket]:
        s = self._settings
        return [Bucket(f"pim:rl:heavy:{tenant_id}", s.heavy_reads_burst, s.heavy_reads_per_second)]

    async def take_heavy(self, tenant_id: int, cost: int = 1) -> Quota | None:
        """A heavy read (app/deps.py) of this tenant: `cost` tokens from a bucket of its own,
        since a single one costs the CPU of hundreds of plain requests. A cost above the bucket's
        size takes the whole bucket (it could never pass otherwise)."""
        return await self._run(
            self._heavy_bucket(tenant_id), "take", min(cost, self._settings.heavy_reads_burst)
        )

    def heavy_refused_now(self, tenant_id: int) -> Quota | None:
        """The 429 of a heavy read this process can tell from its mirror alone, before the
        request's body is read: the tenant's heavy-read bucket lacks even one token (the least a
        heavy read takes). None when the mirror cannot tell; `take_heavy` decides later."""
        if not self.enabled:
            return None
        return self._refused_from_mirror(self._heavy_bucket(tenant_id), int(time.time() * 1000), 1)

    async def may_look_up_credentials(self, ip: str) -> Quota | None:
        """Whether this IP may still cost us a credential lookup (its failure bucket is not empty)."""
        return await self._run(self._ip_bucket(ip), "peek")

    async def credentials_failed(self, ip: str) -> Quota | None:
        return await self._run(self._ip_bucket(ip), "charge")


class ConcurrencyLimiter:
    """At most `limit` requests of one tenant at once in this process (heavy reads); the next is a 429
    at once rather than another database backend kept busy."""

    def __init__(self, limit: int):
        self.limit = limit
        self._running: dict[int, int] = {}

    def check_free(self, tenant_id: int) -> None:
        """The 429 of a request that would find every slot of its tenant taken."""
        if self._running.get(tenant_id, 0) >= self.limit:
            raise TooManyRequests(
                f"At most {self.limit} of these requests of a tenant run at once; retry shortly",
                retry_after=1,
            )

    @contextmanager
    def slot(self, tenant_id: int) -> Iterator[None]:
        self.check_free(tenant_id)
        self._running[tenant_id] = self._running.get(tenant_id, 0) + 1
        try:
            yield
        finally:
            left = self._running[tenant_id] - 1
            if left:
                self._running[tenant_id] = left
            else:
                del self._running[tenant_id]


class TenantTurns:
    """At most `limit` requests of one tenant run at once in this process; the tenant's next ones
    wait their turn (in order, holding nothing but their connection) instead of running beside
    them. A tenant that keeps many connections busy, within its rate limit, then shares the
    process's event loop and database connections with `limit` requests at a time, and another
    tenant's request runs beside at most that many of its requests, however many it sends."""

    def __init__(self, limit: int):
        self.limit = limit
        self._tenants: dict[int, tuple[asyncio.Semaphore, list[int]]] = {}

    def turn(self, tenant_id: int) -> "_Turn":
        """`async with turns.turn(tenant_id):` the request runs in its tenant's turn."""
        return _Turn(self, tenant_id)


class _Turn:
    """A class, not a generator-based context manager: every request takes one."""

    __slots__ = ("_semaphore", "_tenant_id", "_turns", "_users")

    def __init__(self, turns: TenantTurns, tenant_id: int):
        self._turns = turns
        self._tenant_id = tenant_id

    async def __aenter__(self) -> None:
        tenants = self._turns._tenants
        entry = tenants.get(self._tenant_id)
        if entry is None:
            entry = tenants[self._tenant_id] = (asyncio.Semaphore(self._turns.limit), [0])
        self._semaphore, self._users = entry
        self._users[0] += 1  # running or waiting: the entry goes when the last one leaves
        try:
            await self._semaphore.acquire()
        except BaseException:  # cancelled while waiting
            self._leave()
            raise

    async def __aexit__(self, *_exc) -> None:
        self._semaphore.release()
        self._leave()

    def _leave(self) -> None:
        self._users[0] -= 1
        if not self._users[0]:
            del self._turns._tenants[self._tenant_id]
