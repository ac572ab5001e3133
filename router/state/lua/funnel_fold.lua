-- Sum a past day's routed combinations (KEYS[1], `funnel:routed:<day>`: field = a lead's 8
-- groups joined by \31 → leads) into the day's dimension hashes (KEYS[2..9], FUNNEL_DIMS
-- order: field `<group>\31n`), then delete them: once per day, atomically (a report calls it
-- for days no commit writes any more; router/state/funnel.py). The dimension hashes get the
-- routed hash's expiry. Reply: 1 folded, 0 nothing to fold.
local flat = redis.call('HGETALL', KEYS[1])
if #flat == 0 then return 0 end
local expires = redis.call('PEXPIRETIME', KEYS[1])
local sums = {}
for d = 1, 8 do sums[d] = {} end
for i = 1, #flat, 2 do
  local n, d = tonumber(flat[i + 1]), 1
  for g in string.gmatch(flat[i], '[^\31]+') do
    if d <= 8 then sums[d][g] = (sums[d][g] or 0) + n end
    d = d + 1
  end
end
for d = 1, 8 do
  local args = {}
  for g, n in pairs(sums[d]) do
    args[#args + 1] = g .. '\31n'
    args[#args + 1] = string.format('%d', n)
  end
  if #args > 0 then
    redis.call('HSET', KEYS[1 + d], unpack(args))
    if expires > 0 then redis.call('PEXPIREAT', KEYS[1 + d], expires) end
  end
end
redis.call('DEL', KEYS[1])
return 1
