-- GCRA rate limit (a token bucket stored as one "theoretical arrival time"), atomic across
-- workers and replicas. KEYS[1] = the bucket; ARGV = limit, period_ms, cost[, now_ms].
-- Server time unless the caller gives now_ms (an app whose clock was injected: tests,
-- replays), so every worker judges by the same clock. Reply:
--   {allowed (1/0), remaining, reset_ms (until the bucket is full), retry_ms (0 if allowed)}
local limit, period, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3] or '1')
local now = tonumber(ARGV[4] or '')
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local interval = period / limit
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
local new_tat = tat + interval * cost
local allow_at = new_tat - period
if allow_at > now then
  return {0, 0, math.ceil(tat - now), math.ceil(allow_at - now)}
end
redis.call('SET', KEYS[1], string.format('%d', math.ceil(new_tat)), 'PX',
           math.max(1, math.ceil(new_tat - now)))
local remaining = math.floor((now - allow_at) / interval)
return {1, remaining, math.ceil(new_tat - now), 0}
