-- Record one engagement event of one person, atomically (router/state/engagement.py).
-- KEYS: 1 person hash, 2 its seen message ids, 3.. the alias keys Python resolved the person
--       through (each must still hold what Python read, else 'moved': resolve again).
-- ARGV[1] = {now, at (event ms, never later than now), ev (type), mid (messageId, '' = none),
--            tracked (the rules read this type), maxtypes, maxtimes, horizon, h (half-life ms
--            for folding), ttl, seen_max, seen_ttl, recent_max, expect (alias values, '' =
--            none), link (lead id to link if none is, or ''), dom, want (fields to return)}.
-- Reply: {status, lead, seq, dom, {want values}, 0}; status 'ok', 'duplicate' (messageId seen:
-- nothing changed), 'ignored' (a type the rules do not read, and the person already has
-- maxtypes types: not stored), 'moved' (an alias changed; nothing done).
--!include _engagement.lua
local a = cjson.decode(ARGV[1])
local K_P, K_SEEN = KEYS[1], KEYS[2]

for i, expect in ipairs(a.expect) do
  local v = redis.call('GET', KEYS[2 + i]) or ''
  if v ~= expect then return {'moved', v, 0, '', {}, 0} end
end

if not eng_seen(K_SEEN, a.mid, a) then
  return eng_reply('duplicate', K_P, tonumber(redis.call('HGET', K_P, 'seq') or '0'), a)
end

local field = 'e:' .. a.ev
local raw = redis.call('HGET', K_P, field)
if not raw then
  local types = tonumber(redis.call('HGET', K_P, 'nt') or '0')
  if not a.tracked and types >= a.maxtypes then
    return eng_reply('ignored', K_P, tonumber(redis.call('HGET', K_P, 'seq') or '0'), a)
  end
  redis.call('HSET', K_P, 'nt', fmt_int(types + 1))
end
redis.call('HSET', K_P, field, eng_record(raw, a.at, a))
local seq = eng_bump(K_P, a.ev, a.at, a.mid, a)
return eng_reply('ok', K_P, seq, a)
