-- SLA bookkeeping shared by commit.lua (handoffs), escalate.lua (breaches) and owner.lua
-- (accept / contacted / reject): the facts stream the SLA report reads, lead events (history +
-- outbox) and the moves a lead can make after its first assignment. Include with
--   --!include _sla.lua
-- (after _pick.lua when the script re-picks).

-- Append one fact to the SLA facts stream: at most ~fmax entries, and the stream expires
-- `ret` (the decision retention) after its last write. Entry ids carry the caller's clock
-- (`<now>-*`), so the report's since/until are plain XRANGE bounds even under a test clock. An
-- id never goes backwards: a worker whose clock is behind the stream's last entry gets '*',
-- which Redis makes the next id after it.
local function sla_fact(key, now, fmax, ret, fields)
  local r = redis.pcall('XADD', key, 'MAXLEN', '~', fmax, fmt_int(now) .. '-*', unpack(fields))
  if type(r) == 'table' and r.err then
    redis.call('XADD', key, 'MAXLEN', '~', fmax, '*', unpack(fields))
  end
  redis.call('PEXPIRE', key, ret)
end

-- The escalate / owner scripts share one KEYS layout:
--   1 lead  2 history  3 outbox  4 SLA schedule  5 SLA facts  6 current owner's open set
--   7 current queue  8 target queue  9.. the pools of a re-pick chain (_pick.lua layout).
-- `a` is the script's decoded ARGV[1]; it always has id, now, ret, hmax, omax, fmax (the fields
-- of LeadWriteArg, router/state/codec.py).

-- The live fields of the lead (KEYS[1]) as a table, or nil when it is gone.
local function sla_lead()
  local f = redis.call('HMGET', KEYS[1], 'state', 'owner', 'pool', 'queue', 'due_at', 'owners',
                       'reassignments', 'sla', 'assigned_at', 'accepted_at', 'sla_state')
  if not f[1] then return nil end
  local owner = f[2] or ''
  local owners = f[6] or ''
  if owners == '' then owners = owner end
  return {state = f[1], owner = owner, pool = f[3] or '', queue = f[4] or '',
          due = tonumber(f[5] or '') or -1, owners = owners,
          reassignments = tonumber(f[7] or '0') or 0, policy = f[8] or '',
          assigned_at = tonumber(f[9] or '') or -1, accepted_at = f[10] or '',
          sla_state = f[11] or ''}
end

-- Is the lead's SLA clock running? (commit.lua schedules it; nothing else marks it pending.)
local function sla_running(cur)
  return cur.due >= 0 and (cur.state == 'assigned' or cur.state == 'queued')
    and (cur.sla_state == '' or cur.sla_state == 'pending')
end

-- History entry + outbox event (the commit's event shape: type, lead_id, at, owner, pool,
-- queue, due_at, plus state and the history entry as JSON, and the stored decision).
local function lead_event(a, etype, entry, now_owner, now_pool, now_queue, due, state)
  entry.at = a.now
  local doc = cjson.encode(entry)
  redis.call('RPUSH', KEYS[2], doc)
  redis.call('LTRIM', KEYS[2], -a.hmax, -1)
  local due_s = ''
  if due and due >= 0 then due_s = fmt_int(due) end
  redis.call('XADD', KEYS[3], 'NOMKSTREAM', 'MAXLEN', '~', a.omax, '*', 'type', etype,
             'lead_id', a.id, 'at', fmt_int(a.now), 'owner', now_owner or '',
             'pool', now_pool or '', 'queue', now_queue or '', 'due_at', due_s, 'state', state,
             'entry', doc, 'decision', redis.call('HGET', KEYS[1], 'decision') or '')
end

-- Take the lead away from its current owner / queue (before it moves somewhere else).
local function sla_release(a, cur)
  if cur.owner ~= '' then redis.call('ZREM', KEYS[6], a.id) end
  if cur.queue ~= '' then redis.call('ZREM', KEYS[7], a.id) end
end

-- Keep the lead (and its history) alive until `retention` after a new deadline.
local function sla_keep(a, due)
  if due < 0 or due <= a.now then return end
  local ttl = a.ret + (due - a.now)
  if redis.call('PTTL', KEYS[1]) < ttl then
    redis.call('PEXPIRE', KEYS[1], ttl)
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
  extend_ttl(KEYS[4], ttl)
end

-- The lead's live explanation of where it is now, as HSET field/value pairs appended to
-- `fields`: `reason` (the assignment's reason) and `route_step`, the explanation's assignment
-- step; with `status`, also `status_step`, the step explaining the status the move set.
-- router/services/records.py (from_stored) shows them over the stored decision's steps; the
-- history keeps every earlier reason. `rule`: the rule that asked for the move ('' = none).
local function explain_move(fields, outcome, rule, reason, status)
  local step = {stage = 'assignment', outcome = outcome, detail = reason}
  if rule ~= '' then step.rule = rule end
  fields[#fields + 1] = 'reason'; fields[#fields + 1] = reason
  fields[#fields + 1] = 'route_step'; fields[#fields + 1] = cjson.encode(step)
  if status then
    step.stage, step.outcome = 'qualification', status
    fields[#fields + 1] = 'status_step'; fields[#fields + 1] = cjson.encode(step)
  end
  return fields
end

-- Who held the lead when something happened to it: 'rep r1' or 'queue triage'.
local function holder(cur)
  if cur.owner ~= '' then return 'rep ' .. cur.owner end
  if cur.queue ~= '' then return 'queue ' .. cur.queue end
  return 'nobody'
end

-- Put the lead in the target queue a.queue (KEYS[8]) without an owner and record `etype` with
-- `entry` (history + outbox); the SLA clock stops (no owner to hold to it). `state` = 'queued'
-- (escalated / rerouted) or 'recycled' (back to nurture: status nurture). `why` = {rule,
-- reason}: the move's live explanation (explain_move).
local function sla_to_queue(a, cur, state, sla_state, etype, entry, why)
  sla_release(a, cur)
  redis.call('ZADD', KEYS[8], a.now, a.id)
  redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', '(' .. fmt_int(a.now - a.ret))
  redis.call('PEXPIRE', KEYS[8], a.ret)
  redis.call('ZREM', KEYS[4], a.id)
  local fields = {'state', state, 'owner', '', 'pool', '', 'queue', a.queue, 'strategy', '',
                  'updated_at', fmt_int(a.now), 'sla_state', sla_state}
  local status = nil
  if state == 'recycled' then
    status = 'nurture'
    fields[#fields + 1] = 'status'; fields[#fields + 1] = status
  end
  explain_move(fields, 'queue:' .. a.queue, why[1], why[2], status)
  redis.call('HSET', KEYS[1], unpack(fields))
  lead_event(a, etype, entry, '', '', a.queue, -1, state)
end

-- Re-pick a rep in the chain a.pools (keys from KEYS[9]), excluding every earlier owner (and
-- a.exclude), and hand the lead to them with a fresh SLA deadline. Returns the new owner, pool,
-- strategy, reason and due; the owner is nil when nobody is eligible (the lead has not moved:
-- the caller sends it to the chain's queue, with the pick's reason). `why` = {rule, sentence}:
-- the live reason is `sentence(owner, pool)` followed by the pick's own reason.
local function sla_repick(a, cur, why)
  local exclude = {}
  for rep in string.gmatch(cur.owners, '[^,]+') do exclude[rep] = true end
  for _, rep in ipairs(a.exclude or {}) do exclude[rep] = true end
  local home = nil
  if a.home ~= '' then home = a.home end
  local ctx = {now = a.now, ret = a.ret, id = a.id, exclude = exclude, home = home}
  local owner, pool, strategy, reason = pick_chain(a.pools, 9, a.queue, ctx)
  if not owner then return nil, pool, strategy, reason, -1 end
  sla_release(a, cur)
  local due = a.due_wall
  if a.dueby[owner] then due = a.dueby[owner] end
  local owners = cur.owners
  if owners == '' then owners = owner else owners = owners .. ',' .. owner end
  if due >= 0 then
    redis.call('ZADD', KEYS[4], due, a.id)
  else
    redis.call('ZREM', KEYS[4], a.id)
  end
  local due_s, sla_state = '', ''
  if due >= 0 then due_s, sla_state = fmt_int(due), 'pending' end
  local live = why[2](owner, pool)
  if reason then live = live .. '; ' .. reason end
  redis.call('HSET', KEYS[1], unpack(explain_move(
    {'state', 'assigned', 'owner', owner, 'pool', pool or '', 'queue', '',
     'strategy', strategy or '', 'owners', owners,
     'reassignments', fmt_int(cur.reassignments + 1), 'owner_since', fmt_int(a.now),
     'updated_at', fmt_int(a.now), 'due_at', due_s, 'sla_state', sla_state},
    'pool:' .. (pool or ''), why[1], live)))
  sla_keep(a, due)
  return owner, pool, strategy, reason, due
end
