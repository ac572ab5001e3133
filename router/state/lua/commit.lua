-- Pick (if the route is a pool) and commit one lead, atomically. See router/state/_commit_args.py
-- for the KEYS/ARGV layout; the reply is
--   {status, owner, pool, queue, strategy, reason, due_ms (-1 = none), now_ms, other_lead,
--    engagement_stale, (status 'stale') the guarded keys' values}.
-- The pool pick itself is the shared one (_pick.lua); SLA facts for the report: _sla.lua.
--!include _pick.lua
--!include _sla.lua
--!include _lx.lua
--!include _funnel.lua
local plan = cmsgpack.unpack(ARGV[1])  -- MessagePack: decodes in ~2/3 of cjson's time
local now, id, ret = plan.now, plan.id, plan.ret
local K_LEAD, K_HIST, K_OUTBOX, K_SLA, K_QUEUE = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local K_FACTS, K_ARRIVALS = KEYS[6], KEYS[7]
-- The list indexes (_lx.lua): the zset and its ranges.
local K_LX, K_LXV = KEYS[8], KEYS[9]

-- A lead id is committed at most once, whatever the caller does (retries, bugs).
if redis.call('EXISTS', K_LEAD) == 1 then
  local f = redis.call('HMGET', K_LEAD, 'owner', 'pool', 'queue', 'strategy', 'reason', 'due_at',
                       'assigned_at')
  return {'exists', f[1] or '', f[2] or '', f[3] or '', f[4] or '', f[5] or '',
          tonumber(f[6] or '') or -1, tonumber(f[7] or '') or now, id}
end

-- Optimistic reads (store.py, models.Guard): the caller decided on guessed values instead of
-- reading them first. If any guarded key's first field (a version: seq, owner) is not what
-- was guessed, nothing is written: the reply carries what a read would have returned.
local stale, reads = false, {}
for i, g in ipairs(plan.guard) do
  local vals = redis.call('HMGET', KEYS[g[1]], unpack(g[3]))
  reads[i] = vals
  if (vals[1] or '') ~= g[2] then stale = true end
end
if stale then return {'stale', '', '', '', '', '', -1, now, '', 0, reads} end

-- Our idempotency claims must still be ours. One can be lost only if this request ran longer
-- than the in-flight TTL and another request took the key over: then it wins, we yield.
local ki = 10
for _, c in ipairs(plan.claims) do
  local v = redis.call('GET', KEYS[ki])
  if v and v ~= c[1] then
    local other = string.match(v, '^[DF]|[^|]*|(.*)$') or ''
    local status = 'in_flight'
    if string.sub(v, 1, 1) == 'D' then status = 'duplicate' end
    return {status, '', '', '', '', 'idempotency key taken by lead ' .. other, -1, now, other}
  end
  ki = ki + 1
end

-- ARGV[3]: the decision's input (msgpack, router/services/decision_input.py); with it, the
-- pick records what it read (ctx.facts, see _pick.lua) for the replay.
local input = ARGV[3] or ''
local ctx = {now = now, ret = ret, id = id}
if input ~= '' then ctx.facts = {} end

local owner, pool, queue, strategy, reason = nil, nil, nil, nil, plan.why
if plan.kind == 'owner' or plan.kind == 'account_owner' then
  -- Ownership wins over availability and caps: the owner gets it, and it counts.
  owner = plan.target
  count_assignment(ctx, KEYS[ki], KEYS[ki + 1])
elseif plan.kind == 'pool' then
  local picked
  owner, pool, strategy, picked, ki = pick_chain(plan.pools, ki, plan.queue, ctx)
  if not owner then queue = plan.queue end
  if picked then reason = picked end
else
  queue = plan.queue
end

-- The SLA deadline may depend on who got the lead (business hours are the owner's).
local due = plan.due
if owner and plan.dueby[owner] then due = plan.dueby[owner] end
-- A lead outlives its SLA deadline by the retention, so the SLA worker always finds it.
local ttl = ret
if due >= 0 and due > now then ttl = ret + (due - now) end

if queue then
  redis.call('ZADD', K_QUEUE, now, id)
  redis.call('ZREMRANGEBYSCORE', K_QUEUE, '-inf', '(' .. fmt_int(now - ret))
  redis.call('PEXPIRE', K_QUEUE, ret)
end
if due >= 0 then
  redis.call('ZADD', K_SLA, due, id)
  redis.call('ZREMRANGEBYSCORE', K_SLA, '-inf', '(' .. fmt_int(now - ret))
  extend_ttl(K_SLA, ttl)
  if plan.sla ~= '' then   -- the handoff, for the SLA report
    sla_fact(K_FACTS, now, plan.fmax, ret,
             {'t', 'handoff', 'lead', id, 'policy', plan.sla, 'pool', pool or '',
              'queue', queue or '', 'owner', owner or '', 'due', fmt_int(due)})
  end
end

local state = 'queued'
if owner then state = 'assigned' end
local due_s = ''
if due >= 0 then due_s = fmt_int(due) end
local fields = {'decision', ARGV[2], 'state', state, 'owner', owner or '',
                'pool', pool or '', 'queue', queue or '', 'strategy', strategy or '',
                'reason', reason, 'rule', plan.rule, 'sla', plan.sla, 'route', plan.kind,
                'assigned_at', fmt_int(now), 'updated_at', fmt_int(now), 'due_at', due_s,
                'reassignments', '0'}
if input ~= '' then
  -- What the replay reads (router/state/inputs.py): the input, and the pick as committed
  -- (owner, pool, queue: reassignments overwrite the live fields) then the facts it read.
  local n = #fields
  fields[n + 1] = 'input'; fields[n + 2] = input
  fields[n + 3] = 'pick'
  fields[n + 4] = (owner or '') .. '\31' .. (pool or '') .. '\31' .. (queue or '') .. '\31'
               .. table.concat(ctx.facts, '\31')
end
if #plan.lx > 0 then
  -- The list indexes: one ZADD (the members the caller built; where the lead went from
  -- here). The lead hash remembers them (`lx`) for moves.
  local sla = ''
  if due >= 0 then sla = 'pending' end
  fields[#fields + 1] = 'lx'
  fields[#fields + 1] = lx_commit(K_LX, K_LXV, plan, owner, pool, queue, sla)
end
funnel_commit(plan, owner, pool, fields)   -- the funnel's routed counts (_funnel.lua)
redis.call('HSET', K_LEAD, unpack(fields))
redis.call('PEXPIRE', K_LEAD, ttl)
if input ~= '' then
  -- The arrival index (keys.py): the replay reads a window in arrival order without SCAN.
  -- Pruned by one commit in 16 (by the id's last byte: random in real ids), which saves a
  -- scripted call (~10k server instructions) on the others; what expired meanwhile stays a
  -- few commits longer (a replay skips a lead that is gone).
  redis.call('ZADD', K_ARRIVALS, now, id)
  if string.byte(id, -1) % 16 == 0 then
    redis.call('ZREMRANGEBYSCORE', K_ARRIVALS, '-inf', '(' .. fmt_int(now - ret))
  end
  redis.call('PEXPIRE', K_ARRIVALS, ret)
end

local rule = nil   -- nil fields are left out of the JSON
if plan.rule ~= '' then rule = plan.rule end
local created = cjson.encode({event = 'created', at = now, rule = rule})
local step
if owner then
  step = cjson.encode({event = 'assigned', at = now, owner = owner, pool = pool,
                       strategy = strategy, reason = reason})
else
  step = cjson.encode({event = 'queued', at = now, queue = queue, reason = reason})
end
-- A new lead's history is these two entries; trim only when there were some before them.
if redis.call('RPUSH', K_HIST, created, step) > plan.hmax then
  redis.call('LTRIM', K_HIST, -plan.hmax, -1)
end
redis.call('PEXPIRE', K_HIST, ttl)

-- NOMKSTREAM: the stream exists once a sink has created its consumer group (at its first
-- start, from the end of the stream); before that no one could ever read the event, and an
-- install without sinks keeps neither the ~2.4 KB per lead in memory nor in its AOF.
redis.call('XADD', K_OUTBOX, 'NOMKSTREAM', 'MAXLEN', '~', plan.omax, '*',
           'type', 'lead.' .. state, 'lead_id', id, 'at', fmt_int(now), 'owner', owner or '',
           'pool', pool or '', 'queue', queue or '', 'due_at', due_s, 'decision', ARGV[2])

-- Completed idempotency records live for the configured retention, never longer than the
-- decision they point to (a retry must find it).
local idem_ttl = math.min(plan.idem, ttl)
for i, c in ipairs(plan.claims) do
  redis.call('SET', KEYS[9 + i], c[2], 'PX', idem_ttl)
end

-- The person index (erasure, access requests): the last key, when the lead has an email.
if plan.person == 1 then
  local k_person = KEYS[#KEYS]
  redis.call('SADD', k_person, id)
  extend_ttl(k_person, ttl)
end

-- Engagement (router/state/engagement.py): the person's events now re-score this lead; if any
-- arrived after the prefetch read them (seq moved), the caller re-scores it at once.
local eng_stale = 0
if (plan.eng or 0) > 0 then
  local k_eng = KEYS[plan.eng]
  if tonumber(redis.call('HGET', k_eng, 'seq') or '0') ~= plan.eng_seq then eng_stale = 1 end
  redis.call('HSET', k_eng, 'lead', id, 'dom', plan.eng_dom)
  extend_ttl(k_eng, plan.eng_ttl)
end

return {state, owner or '', pool or '', queue or '', strategy or '', reason, due, now, '',
        eng_stale}
