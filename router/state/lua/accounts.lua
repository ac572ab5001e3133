-- Set or delete account owners, keeping the accounts index (router/state/lists.py).
-- KEYS = the index (zset, lex: d \31 DOMAIN, o \31 OWNER \31 DOMAIN), then one account hash
-- per row. ARGV = at ms, then per row: domain (normalised, as in its key), owner ('' =
-- delete). Reply: how many accounts changed.
local idx, at, n = KEYS[1], ARGV[1], 0
for i = 2, #KEYS do
  local domain, owner = ARGV[2 * i - 2], ARGV[2 * i - 1]
  local old = redis.call('HGET', KEYS[i], 'owner')
  if old and old ~= owner then redis.call('ZREM', idx, 'o\31' .. old .. '\31' .. domain) end
  if owner == '' then
    if old then
      redis.call('DEL', KEYS[i])
      redis.call('ZREM', idx, 'd\31' .. domain)
      n = n + 1
    end
  else
    redis.call('HSET', KEYS[i], 'owner', owner, 'at', at)
    if old ~= owner then
      redis.call('ZADD', idx, 0, 'd\31' .. domain, 0, 'o\31' .. owner .. '\31' .. domain)
      n = n + 1
    end
  end
end
return n
