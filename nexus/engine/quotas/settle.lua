-- Settle one reservation: close it in the ledger and move each counter.
-- KEYS[1] is the organization's ledger and KEYS[2] its due times.
-- KEYS[3..2+n] are the counters, KEYS[3+n..2+2n] their soft-limit markers.
-- ARGV[1] is the reservation id and ARGV[2] the counter count. Per counter follow:
-- the bucket and amount to add while the reservation is open, the bucket and amount
-- to add when it is gone (released when due, or lost), the oldest bucket, the ttl,
-- the soft limit (-1: none), the marker ttl and the seed.
-- Returns {reservation found 1 or 0, per counter: usage at a first soft crossing or -1}.

local count = tonumber(ARGV[2])
local STRIDE = 9
local found = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])

local result = {found}
for i = 1, count do
  local key = KEYS[2 + i]
  local at = 2 + (i - 1) * STRIDE
  local oldest = tonumber(ARGV[at + 5])
  local ttl = ARGV[at + 6]
  seed(key, ARGV[at + 9], oldest, ttl)
  local bucket, amount = ARGV[at + 3], ARGV[at + 4]
  if found == 1 then
    bucket, amount = ARGV[at + 1], ARGV[at + 2]
  end
  if amount ~= '0' then
    redis.call('HINCRBY', key, bucket, amount)
  end
  redis.call('EXPIRE', key, ttl)
  local crossed = -1
  local soft = tonumber(ARGV[at + 7])
  if soft >= 0 then
    local total = load(key, oldest)
    if total >= soft and redis.call('SET', KEYS[2 + count + i], '1', 'NX', 'EX', ARGV[at + 8]) then
      crossed = total
    end
  end
  result[#result + 1] = crossed
end
return result
