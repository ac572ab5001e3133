-- Apply a re-evaluation of an EXISTING lead after engagement changed, atomically and only if the
-- lead is still where Python read it (router/services/engagement.py decides, router/state/engagement.py
-- calls this). Exactly once: each evaluation carries the person's engagement sequence number
-- `seq`; the lead keeps the newest one applied (`eng_seq`) and refuses older or equal ones, and
-- the status it rose from must still be the lead's status, so of any number of concurrent
-- events crossing a threshold exactly one hands the lead over.
--
-- KEYS: the shared SLA layout of _sla.lua (1 lead, 2 history, 3 outbox, 4 SLA schedule, 5 SLA
--       facts, 6 current owner's open set, 7 current queue, 8 target queue, 9.. the pools of
--       the route's chain) then, for owner routes, the new owner's day counter and open set.
-- ARGV[1] = {id, now, ret, hmax, omax, fmax, seq, mode, status, expect {owner, state, queue,
--            status}, kind, target, why, rule, sla, queue, pools, due_wall, dueby, entry,
--            update (true: new lead data, router/services/engagement.py update(): no seq check)}
--   mode: 'seq' (nothing the lead shows changed: only remember seq), 'rescore' (new score or a
--         lower status: nothing is reassigned), 'keep' (status rose while a rep has the lead:
--         the rep keeps it; a lead still waiting for acceptance gets the new SLA deadline if
--         it is earlier), 'route' (status rose: route it like a new lead — pick / owner /
--         queue — and start its SLA clock: the handoff).
-- ARGV[2] = the new stored decision JSON.
-- Reply: {status, owner, state, pool, queue, due ms (-1 = none)}; status 'unchanged',
-- 'rescored', 'requalified', or nothing done: 'stale' (a newer evaluation was applied),
-- 'changed' (the lead moved since it was read: read again), 'not_found'.
--!include _pick.lua
--!include _sla.lua
--!include _lx.lua
local a = cjson.decode(ARGV[1])
-- The script's own work; then the list indexes follow the lead (_lx.lua lx_sync).
local function lx_main()
local cur = sla_lead()
if not cur then return {'not_found', '', '', '', '', -1} end
local function reply(status, due)
  return {status, cur.owner, cur.state, cur.pool, cur.queue, due or cur.due}
end
local f = redis.call('HMGET', KEYS[1], 'eng_seq', 'status', 'decision')
local eng_seq = tonumber(f[1] or '0') or 0
-- An update (new lead data under its external_id: a.update) is no engagement evaluation: the
-- expected fields below alone guard it.
if not a.update and eng_seq >= a.seq then return reply('stale') end
local status = f[2]
if not status and f[3] then status = cjson.decode(f[3]).status end
local e = a.expect
if cur.owner ~= e.owner or cur.state ~= e.state or cur.queue ~= e.queue
    or (status or '') ~= e.status then
  return reply('changed')
end

local now_s = fmt_int(a.now)
if a.seq > eng_seq then redis.call('HSET', KEYS[1], 'eng_seq', fmt_int(a.seq)) end
if a.mode == 'seq' then return reply('unchanged') end
redis.call('HSET', KEYS[1], 'decision', ARGV[2], 'status', a.status, 'updated_at', now_s)
-- The new decision explains the status now (an earlier move's status step is history); its
-- assignment step is the current one's (engagement.py keeps it when the lead stays put) unless
-- an earlier move left a live one (`route_step`, _sla.lua explain_move), which stays until the
-- lead is routed again here.
redis.call('HDEL', KEYS[1], 'status_step')

-- A lead that changes is kept for the retention from now (longer while a deadline runs).
local function keep_alive(due)
  local ttl = a.ret
  if due >= 0 and due > a.now then ttl = a.ret + (due - a.now) end
  if redis.call('PTTL', KEYS[1]) < ttl then
    redis.call('PEXPIRE', KEYS[1], ttl)
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
  if due >= 0 then extend_ttl(KEYS[4], ttl) end
end

local function handoff_fact(owner, pool, queue, due)
  sla_fact(KEYS[5], a.now, a.fmax, a.ret,
           {'t', 'handoff', 'lead', a.id, 'policy', a.sla, 'pool', pool or '',
            'queue', queue or '', 'owner', owner or '', 'due', fmt_int(due)})
end

local entry = a.entry
if a.mode == 'rescore' then
  lead_event(a, 'lead.rescored', entry, cur.owner, cur.pool, cur.queue, cur.due, cur.state)
  keep_alive(cur.due)
  return reply('rescored')
end

if a.mode == 'keep' then
  local due = a.due_wall
  if a.dueby[cur.owner] then due = a.dueby[cur.owner] end
  if due >= 0 and a.sla ~= '' and cur.state == 'assigned'
      and (not sla_running(cur) or due < cur.due) then
    redis.call('ZADD', KEYS[4], due, a.id)
    redis.call('HSET', KEYS[1], 'due_at', fmt_int(due), 'sla', a.sla, 'sla_state', 'pending',
               'assigned_at', now_s, 'accepted_at', '')
    handoff_fact(cur.owner, cur.pool, cur.queue, due)
    entry.data.sla = a.sla
  else
    due = cur.due
  end
  entry.owner = cur.owner
  lead_event(a, 'lead.requalified', entry, cur.owner, cur.pool, cur.queue, due, cur.state)
  keep_alive(due)
  return reply('requalified', due)
end

-- 'route': the handoff. The lead leaves its owner / queue and is routed like a new one.
sla_release(a, cur)
local ctx = {now = a.now, ret = a.ret, id = a.id}
local owner, pool, queue, strategy, reason = nil, nil, nil, nil, a.why
if a.kind == 'pool' then
  local picked
  owner, pool, strategy, picked = pick_chain(a.pools, 9, a.queue, ctx)
  if not owner then queue = a.queue end
  if picked then reason = picked end
elseif a.kind == 'owner' or a.kind == 'account_owner' then
  owner = a.target
  count_assignment(ctx, KEYS[#KEYS - 1], KEYS[#KEYS])
else
  queue = a.queue
end

local due = a.due_wall
if owner and a.dueby[owner] then due = a.dueby[owner] end
if queue then
  redis.call('ZADD', KEYS[8], a.now, a.id)
  redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', '(' .. fmt_int(a.now - a.ret))
  redis.call('PEXPIRE', KEYS[8], a.ret)
end
local due_s, sla_state = '', ''
if due >= 0 then
  redis.call('ZADD', KEYS[4], due, a.id)
  due_s, sla_state = fmt_int(due), 'pending'
  if a.sla ~= '' then handoff_fact(owner, pool, queue, due) end
else
  redis.call('ZREM', KEYS[4], a.id)
end
local state = 'queued'
local owners = cur.owners
if owner then
  state = 'assigned'
  if owners == '' then owners = owner
  elseif not string.find(',' .. owners .. ',', ',' .. owner .. ',', 1, true) then
    owners = owners .. ',' .. owner
  end
end
redis.call('HSET', KEYS[1], 'state', state, 'owner', owner or '', 'pool', pool or '',
           'queue', queue or '', 'strategy', strategy or '', 'reason', reason, 'rule', a.rule,
           'route', a.kind, 'sla', a.sla, 'due_at', due_s, 'sla_state', sla_state,
           'assigned_at', now_s, 'accepted_at', '', 'owners', owners)
if owner then redis.call('HSET', KEYS[1], 'owner_since', now_s) end
redis.call('HDEL', KEYS[1], 'route_step')  -- routed like a new lead: the decision explains it
entry.owner, entry.pool, entry.queue, entry.strategy, entry.reason = owner, pool, queue,
  strategy, reason
if a.rule ~= '' then entry.rule = a.rule end
lead_event(a, 'lead.requalified', entry, owner, pool, queue, due, state)
keep_alive(due)
return {'requalified', owner or '', state, pool or '', queue or '', due}
end
-- A re-score may change the grade, territory and segment (the status is the hash's).
local function lx_over(r)
  if (r[1] ~= 'rescored' and r[1] ~= 'requalified') or (ARGV[2] or '') == '' then
    return nil
  end
  local ok, d = pcall(cjson.decode, ARGV[2])
  if not ok or type(d) ~= 'table' then return nil end
  local function s(v) if type(v) == 'string' then return v end return '' end
  local grade = ''
  if type(d.score) == 'table' then grade = s(d.score.grade) end
  return {[3] = s(d.territory), [4] = s(d.segment), [5] = grade}
end
local lx_reply = lx_main()
if (a.lxk or 0) > 0 then lx_sync(KEYS[1], KEYS[a.lxk], KEYS[a.lxk + 1], a.id, lx_over(lx_reply)) end
return lx_reply
