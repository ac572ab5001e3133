-- Drop idempotency claims that are still ours. KEYS = claim keys, ARGV = our in-flight markers
-- (same order). A key whose value differs was taken over by another request after ours
-- expired (or completed): it is not ours to delete. Reply: how many were released.
local n = 0
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i] then
    redis.call('DEL', key)
    n = n + 1
  end
end
return n
