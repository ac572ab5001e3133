-- Escalate one breached SLA, exactly once. KEYS: the shared SLA layout of _sla.lua (lead,
-- history, outbox, SLA schedule, SLA facts, current owner's open set, current queue, target
-- queue, then the pools of a re-pick chain).
-- ARGV[1] = {id, now, fence, due, owner, how, label, pools, queue, home, dueby, due_wall,
--            exclude, ret, hmax, omax, fmax}; `how` is what Python decided from the policy:
--   notify  keep the owner, stop the clock, tell everyone (the outbox event)
--   pick    re-pick in the chain `pools` excluding every earlier owner; nobody → `queue`
--   queue   move to `queue` without an owner
--   nurture recycle to marketing (`queue` = the nurture queue, status nurture)
-- The worker claimed the lead with claim_due.lua: this runs only while the schedule entry still
-- holds the claim's fence, and it removes or replaces the entry — so of any number of workers
-- that ever saw this deadline due, exactly one escalates it.
-- Reply: {result, owner, pool, queue, due ms (-1 = none)}; result = notified | reassigned |
-- queued | recycled, or stale (claim lost) | gone (lead expired) | changed (moved on meanwhile).
--!include _pick.lua
--!include _sla.lua
--!include _lx.lua
local a = cjson.decode(ARGV[1])
-- The script's own work; then the list indexes follow the lead (_lx.lua lx_sync).
local function lx_main()
local score = redis.call('ZSCORE', KEYS[4], a.id)
if not score or tonumber(score) ~= a.fence then return {'stale', '', '', '', -1} end
local cur = sla_lead()
if not cur then
  redis.call('ZREM', KEYS[4], a.id)
  return {'gone', '', '', '', -1}
end
if not sla_running(cur) or cur.due ~= a.due or cur.owner ~= a.owner then
  -- The lead moved on after the worker read it: back on the schedule at its real deadline
  -- if its clock still runs (the next tick looks again), else off it.
  if sla_running(cur) then
    redis.call('ZADD', KEYS[4], cur.due, a.id)
  else
    redis.call('ZREM', KEYS[4], a.id)
  end
  return {'changed', cur.owner, cur.pool, cur.queue, cur.due}
end

local function nz(s) if s == '' then return nil end return s end
local late = a.now - cur.due
lead_event(a, 'lead.breached',
           {event = 'breached', owner = nz(cur.owner), pool = nz(cur.pool),
            queue = nz(cur.queue), reason = 'not accepted within the ' .. cur.policy .. ' SLA',
            data = {policy = cur.policy, due_at_ms = cur.due, action = a.label,
                    breach = cur.reassignments + 1}},
           cur.owner, cur.pool, cur.queue, cur.due, cur.state)
sla_fact(KEYS[5], a.now, a.fmax, a.ret,
         {'t', 'breach', 'lead', a.id, 'policy', cur.policy, 'pool', cur.pool,
          'queue', cur.queue, 'owner', cur.owner, 'action', a.label, 'late', fmt_int(late)})

if a.how == 'notify' then
  redis.call('ZREM', KEYS[4], a.id)
  redis.call('HSET', KEYS[1], 'sla_state', 'breached', 'updated_at', fmt_int(a.now))
  return {'notified', cur.owner, cur.pool, cur.queue, -1}
end

-- What every move's event carries besides its own fields.
local moved = {from = nz(cur.owner), policy = cur.policy, action = a.label}
-- The live reason of the move (the assignment's, shown by GET /v1/leads/{id}).
local breach = 'after SLA breach of ' .. cur.policy .. ' by ' .. holder(cur)
local to_queue = 'escalated to queue ' .. a.queue .. ' ' .. breach

if a.how == 'pick' then
  local owner, pool, strategy, reason, due = sla_repick(a, cur, {cur.policy, function(o, p)
    return 'reassigned to ' .. o .. ' in ' .. p .. ' ' .. breach
  end})
  if owner then
    lead_event(a, 'lead.reassigned',
               {event = 'reassigned', owner = owner, pool = pool, strategy = strategy,
                reason = reason, data = moved},
               owner, pool, '', due, 'assigned')
    sla_fact(KEYS[5], a.now, a.fmax, a.ret,
             {'t', 'reassign', 'lead', a.id, 'policy', cur.policy, 'pool', cur.pool,
              'queue', cur.queue, 'owner', cur.owner, 'to', owner, 'to_pool', pool or ''})
    return {'reassigned', owner, pool or '', '', due}
  end
  local live = to_queue
  if reason then live = live .. '; ' .. reason end
  sla_to_queue(a, cur, 'queued', 'breached', 'lead.requeued',
               {event = 'requeued', queue = a.queue, reason = reason, data = moved},
               {cur.policy, live})
  return {'queued', '', '', a.queue, -1}
end

if a.how == 'queue' then
  sla_to_queue(a, cur, 'queued', 'breached', 'lead.requeued',
               {event = 'requeued', queue = a.queue,
                reason = 'SLA ' .. cur.policy .. ' breached: moved to queue ' .. a.queue,
                data = moved}, {cur.policy, to_queue})
  return {'queued', '', '', a.queue, -1}
end

-- nurture
sla_to_queue(a, cur, 'recycled', 'breached', 'lead.recycled',
             {event = 'recycled', queue = a.queue, reason = 'sla_breach', data = moved},
             {cur.policy, 'recycled to nurture (queue ' .. a.queue .. ') ' .. breach})
sla_fact(KEYS[5], a.now, a.fmax, a.ret,
         {'t', 'recycle', 'lead', a.id, 'policy', cur.policy, 'pool', cur.pool,
          'queue', cur.queue, 'owner', cur.owner, 'reason', 'sla_breach'})
return {'recycled', '', '', a.queue, -1}
end
local lx_reply = lx_main()
if (a.lxk or 0) > 0 then lx_sync(KEYS[1], KEYS[a.lxk], KEYS[a.lxk + 1], a.id, nil) end
return lx_reply
