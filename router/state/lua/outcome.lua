-- Record an outcome of a lead (router/state/funnel.py, record_outcome): the stage it reached,
-- when, the deal amount, a reason; and the funnel aggregates of the lead's routing day, all at
-- once. Idempotent: by `oid` (an outcome id already seen changes nothing) and by stage (the
-- first report of a stage wins: stages arriving twice or out of order give the same timeline
-- and the same counts).
-- KEYS: 1 lead, 2 history, 3..10 the funnel hashes of the lead's routing day (_funnel.lua).
-- ARGV[1] = {id, now, stage, at, amount ('' = none), units (amount in 1/10000, -1 = none),
--            currency, reason, oid ('' = none), day (the routing day's start, ms), fk = 3,
--            fexp, fs {stages, chain, won, pairs}, hmax}.
-- Reply: {status, assigned_at ms, {counted stages...}, {the lead's `a.read` fields now}};
-- status 'recorded', 'repeat' (the stage was reached before: nothing but amount/reason
-- changed), 'duplicate' (outcome id seen), 'not_found', 'moved' (the routing day is not
-- `day`: call again with that day's keys).
--!include _funnel.lua
local a = cjson.decode(ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'state', 'assigned_at')
if not f[1] then return {'not_found', -1} end
local routed = tonumber(f[2] or '') or -1
local function reply(status, counted)
  return {status, routed, counted, redis.call('HMGET', KEYS[1], unpack(a.read))}
end
if a.oid ~= '' and redis.call('HEXISTS', KEYS[1], 'oid:' .. a.oid) == 1 then
  return reply('duplicate', {})
end
if routed >= 0 and (routed < a.day or routed >= a.day + 86400000) then
  return {'moved', routed}
end

local _, _, t = funnel_read(a.fs)
local fields = {'updated_at', fmt_int(a.now)}
if a.oid ~= '' then
  fields[#fields + 1] = 'oid:' .. a.oid; fields[#fields + 1] = a.stage
end
if a.amount ~= '' then
  fields[#fields + 1] = 'amount'; fields[#fields + 1] = a.amount
  fields[#fields + 1] = 'currency'; fields[#fields + 1] = a.currency
end
if a.reason ~= '' then
  fields[#fields + 1] = 'lost_reason'; fields[#fields + 1] = a.reason
end
if t[a.stage] then
  redis.call('HSET', KEYS[1], unpack(fields))
  return reply('repeat', {})
end
fields[#fields + 1] = 'stg:' .. a.stage; fields[#fields + 1] = fmt_int(a.at)
redis.call('HSET', KEYS[1], unpack(fields))

local units, cur = a.units, a.currency
if units < 0 then   -- the won amount reported earlier (with an opportunity, say)
  local stored = redis.call('HMGET', KEYS[1], 'units', 'currency')
  units, cur = tonumber(stored[1] or '') or -1, stored[2] or ''
end
if a.units >= 0 then redis.call('HSET', KEYS[1], 'units', fmt_int(a.units)) end
local new = {}
if routed >= 0 then new = funnel_apply(a, a.fs, a.stage, units, cur) end

local entry = {event = 'outcome', at = a.now, stage = a.stage, reached_at = a.at}
if a.amount ~= '' then entry.amount = a.amount; entry.currency = a.currency end
if a.reason ~= '' then entry.reason = a.reason end
if redis.call('RPUSHX', KEYS[2], cjson.encode(entry)) > a.hmax then
  redis.call('LTRIM', KEYS[2], -a.hmax, -1)
end
return reply('recorded', new)
