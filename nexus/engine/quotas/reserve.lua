-- Reserve an estimate on every counter of one request, or on none of them.
-- KEYS[1]: the organization's ledger (hash of reservation id to JSON entries)
-- KEYS[2]: the ledger's due times (sorted set of reservation id by epoch seconds)
-- KEYS[3..]: one counter per quota
-- ARGV[1]: now, ARGV[2]: reservation id, ARGV[3]: due time, ARGV[4]: counter count,
-- then per counter: bucket, oldest bucket, ttl, amount, hard limit (-1: none), seed,
-- floor. The floor is the part the request needs for certain, its prompt. A counter
-- whose amount does not fit reserves only what is left under its hard limit, as long
-- as that is more than its floor. Otherwise the request is rejected.
-- Ledger entries name counter keys that are not in KEYS; they carry the same
-- {o<org>} hash tag, so in Redis Cluster they live in the same slot.
-- Returns {admitted 1 or 0, rejected counter (1-based, 0: none), drain bucket,
-- used per counter..., reserved amount per counter...}.

local now = tonumber(ARGV[1])
local count = tonumber(ARGV[4])
local STRIDE = 7

local function release_due()
  local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 32)
  for _, id in ipairs(due) do
    local payload = redis.call('HGET', KEYS[1], id)
    if payload then
      for _, entry in ipairs(cjson.decode(payload)) do
        if redis.call('HEXISTS', entry[1], entry[2]) == 1 then
          redis.call('HINCRBY', entry[1], entry[2], '-' .. entry[3])
        end
      end
      redis.call('HDEL', KEYS[1], id)
    end
    redis.call('ZREM', KEYS[2], id)
  end
end

local function drain(buckets, needed)
  table.sort(buckets, function(a, b) return a[1] < b[1] end)
  local freed = 0
  for _, item in ipairs(buckets) do
    freed = freed + item[2]
    if freed >= needed then
      return item[1]
    end
  end
  return -1
end

release_due()

local used = {}
local amounts = {}
local rejected = 0
local drained = -1
for i = 1, count do
  local key = KEYS[2 + i]
  local at = 4 + (i - 1) * STRIDE
  local oldest = tonumber(ARGV[at + 2])
  seed(key, ARGV[at + 6], oldest, ARGV[at + 3])
  local total, buckets = load(key, oldest)
  used[i] = total
  amounts[i] = ARGV[at + 4]
  local amount = tonumber(ARGV[at + 4])
  local hard = tonumber(ARGV[at + 5])
  if rejected == 0 and hard >= 0 and total + amount > hard then
    if total + tonumber(ARGV[at + 7]) < hard then
      amounts[i] = string.format('%.0f', hard - total)
    else
      local floor = tonumber(ARGV[at + 7])
      local needed = total + amount - hard
      if floor < amount then
        needed = total + floor - hard + 1
      end
      rejected = i
      drained = drain(buckets, needed)
    end
  end
end
if rejected > 0 then
  return {0, rejected, drained, unpack(used)}
end

local entries = {}
for i = 1, count do
  local key = KEYS[2 + i]
  local at = 4 + (i - 1) * STRIDE
  local amount = amounts[i]
  if amount ~= '0' then
    redis.call('HINCRBY', key, ARGV[at + 1], amount)
    entries[#entries + 1] = {key, ARGV[at + 1], amount}
  end
  redis.call('EXPIRE', key, ARGV[at + 3])
end
if #entries > 0 then
  redis.call('HSET', KEYS[1], ARGV[2], cjson.encode(entries))
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
  local keep = math.ceil(tonumber(ARGV[3]) - now) + 3600
  redis.call('EXPIRE', KEYS[1], keep)
  redis.call('EXPIRE', KEYS[2], keep)
end
local reply = {1, 0, -1}
for i = 1, count do
  reply[#reply + 1] = used[i]
end
for i = 1, count do
  reply[#reply + 1] = tonumber(amounts[i])
end
return reply
