-- Helpers shared by the reserve and settle scripts. A counter is a hash of bucket id
-- to amount; buckets older than the window's oldest bucket are deleted when read.
-- Amounts travel as decimal strings and are summed as Lua numbers, which are exact
-- up to 2^53 (about 9 million USD in nano-USD).

local function seed(key, spec, oldest, ttl)
  if spec == '' or redis.call('EXISTS', key) == 1 then
    return
  end
  for bucket, amount in string.gmatch(spec, '(%-?%d+):(%d+)') do
    if tonumber(bucket) >= oldest then
      redis.call('HINCRBY', key, bucket, amount)
    end
  end
  redis.call('EXPIRE', key, ttl)
end

local function load(key, oldest)
  local fields = redis.call('HGETALL', key)
  local total = 0
  local buckets = {}
  for i = 1, #fields, 2 do
    local bucket = tonumber(fields[i])
    if bucket < oldest then
      redis.call('HDEL', key, fields[i])
    else
      local amount = tonumber(fields[i + 1])
      total = total + amount
      buckets[#buckets + 1] = {bucket, amount}
    end
  end
  return total, buckets
end
