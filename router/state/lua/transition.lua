-- Move a stored lead to a new state, atomically, if it is where the caller thinks it is.
-- KEYS = lead, history, outbox, SLA schedule, [open set of the expected owner].
-- ARGV[1] = {id, now, owner ('' = any), states ([] = any), state, entry, fields (flat list),
--            close_open, clear_sla, event ('' = none), hmax, omax}.
-- Reply: {'ok' | 'not_found' | 'conflict', current owner, current state}.
--!include _lx.lua
local a = cjson.decode(ARGV[1])
-- The script's own work; then the list indexes follow the lead (_lx.lua lx_sync).
local function lx_main()
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found', '', ''} end
local cur = redis.call('HMGET', KEYS[1], 'owner', 'state')
local owner, state = cur[1] or '', cur[2] or ''
if a.owner ~= '' and owner ~= a.owner then return {'conflict', owner, state} end
if #a.states > 0 then
  local allowed = false
  for _, s in ipairs(a.states) do if s == state then allowed = true end end
  if not allowed then return {'conflict', owner, state} end
end
local now_s = fmt_int(a.now)
redis.call('HSET', KEYS[1], 'state', a.state, 'updated_at', now_s, unpack(a.fields))
-- A move (owner / queue in `fields`) or a new status explains itself as the SLA moves do
-- (_sla.lua explain_move): the entry's reason becomes the live one, shown by GET /v1/leads.
local set = {}
for i = 1, #a.fields - 1, 2 do set[a.fields[i]] = a.fields[i + 1] end
if a.entry.reason and (set.owner or set.queue or set.status) then
  local now_f = redis.call('HMGET', KEYS[1], 'owner', 'pool', 'queue')
  local where = 'queue:' .. (now_f[3] or '')
  if (now_f[1] or '') ~= '' then
    where = 'owner:' .. now_f[1]
    if (now_f[2] or '') ~= '' then where = 'pool:' .. now_f[2] end
  end
  local step = {stage = 'assignment', outcome = where, detail = a.entry.reason}
  local live = {}
  if set.owner or set.queue then
    live = {'reason', a.entry.reason, 'route_step', cjson.encode(step)}
  end
  if set.status then
    step.stage, step.outcome = 'qualification', set.status
    live[#live + 1] = 'status_step'; live[#live + 1] = cjson.encode(step)
  end
  redis.call('HSET', KEYS[1], unpack(live))
end
a.entry.at = a.now
-- The history and the lead hash share one TTL set at commit; RPUSH/HSET keep it.
redis.call('RPUSH', KEYS[2], cjson.encode(a.entry))
redis.call('LTRIM', KEYS[2], -a.hmax, -1)
if a.close_open and KEYS[5] then redis.call('ZREM', KEYS[5], a.id) end
if a.clear_sla then redis.call('ZREM', KEYS[4], a.id) end
if a.event ~= '' then
  redis.call('XADD', KEYS[3], 'NOMKSTREAM', 'MAXLEN', '~', a.omax, '*', 'type', a.event,
             'lead_id', a.id, 'at', now_s, 'owner', owner, 'state', a.state,
             'entry', cjson.encode(a.entry))
end
return {'ok', owner, a.state}
end
local lx_reply = lx_main()
if (a.lxk or 0) > 0 then lx_sync(KEYS[1], KEYS[a.lxk], KEYS[a.lxk + 1], a.id, nil) end
return lx_reply
