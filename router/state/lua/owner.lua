-- An owner's action on a lead: accept, contacted or reject, atomically and only if the lead is
-- still where the caller saw it (owner and state), so a stale owner can never act. KEYS: the
-- shared SLA layout of _sla.lua.
-- ARGV[1] = {id, now, action (accept | contacted | reject), rep, expect_owner, expect_state,
--            reason, note, via (the credential acting for rep, '' = none),
--            how (reject: nurture | queue | pick), queue, pools, home, dueby,
--            due_wall, exclude, ret, hmax, omax, fmax}.
-- Accept / contacted stop the SLA clock (the first of them records time-to-accept for the
-- report); a rep may take a queued lead that has no owner. Reject records the reason for
-- marketing and recycles the lead to nurture (`how` nurture), or reroutes it (wrong
-- territory): to a queue, or to a rep picked in another pool's chain (earlier owners excluded).
-- Reply: {'ok' | 'not_found' | 'changed', owner, state, pool, queue, due ms (-1 = none)}.
--!include _pick.lua
--!include _sla.lua
--!include _lx.lua
--!include _funnel.lua
local a = cjson.decode(ARGV[1])
-- The script's own work; then the list indexes follow the lead (_lx.lua lx_sync).
local function lx_main()
local cur = sla_lead()
if not cur then return {'not_found', '', '', '', '', -1} end
if cur.owner ~= a.expect_owner or cur.state ~= a.expect_state then
  return {'changed', cur.owner, cur.state, cur.pool, cur.queue, cur.due}
end
local function nz(s) if s == '' then return nil end return s end
local now_s = fmt_int(a.now)
local running = sla_running(cur)
local note = nil
if a.note ~= '' then note = a.note end

if a.action == 'accept' or a.action == 'contacted' then
  local state = 'accepted'
  if a.action == 'contacted' then state = 'contacted' end
  local fields = {'state', state, 'owner', a.rep, 'updated_at', now_s}
  if cur.owner ~= '' then
    redis.call('ZREM', KEYS[6], a.id)   -- accepted: no longer open (least_loaded)
  else
    -- A queued lead nobody owns: the rep takes it.
    if cur.queue ~= '' then redis.call('ZREM', KEYS[7], a.id) end
    local owners = cur.owners
    if owners == '' then owners = a.rep else owners = owners .. ',' .. a.rep end
    fields[#fields + 1] = 'queue'; fields[#fields + 1] = ''
    fields[#fields + 1] = 'owners'; fields[#fields + 1] = owners
    fields[#fields + 1] = 'owner_since'; fields[#fields + 1] = now_s
    explain_move(fields, 'owner:' .. a.rep, '',
                 'taken from queue ' .. cur.queue .. ' by rep ' .. a.rep)
  end
  local in_time = nil
  if running then
    in_time = a.now < cur.due   -- due at `due`: the worker escalates from that ms on
    redis.call('ZREM', KEYS[4], a.id)
    fields[#fields + 1] = 'sla_state'
    if in_time then fields[#fields + 1] = 'met' else fields[#fields + 1] = 'late' end
  end
  if cur.accepted_at == '' then
    fields[#fields + 1] = 'accepted_at'; fields[#fields + 1] = now_s
    if cur.policy ~= '' then
      local ok = '0'
      if in_time then ok = '1' end
      local start = cur.assigned_at
      if start < 0 then start = a.now end
      sla_fact(KEYS[5], a.now, a.fmax, a.ret,
               {'t', 'accept', 'lead', a.id, 'policy', cur.policy, 'pool', cur.pool,
                'queue', cur.queue, 'owner', a.rep, 'tta', fmt_int(a.now - start),
                'in_time', ok})
    end
  end
  redis.call('HSET', KEYS[1], unpack(fields))
  funnel_owner(a, cur, state)   -- the funnel's first stages (_funnel.lua)
  local data = {note = note, via = nz(a.via)}
  if in_time ~= nil then data.in_time = in_time end
  lead_event(a, 'lead.' .. state,
             {event = state, owner = a.rep, pool = nz(cur.pool), by = a.rep, data = data},
             a.rep, cur.pool, '', cur.due, state)
  return {'ok', a.rep, state, cur.pool, '', cur.due}
end

-- reject: the reason is marketing's feedback, whatever happens to the lead next.
sla_fact(KEYS[5], a.now, a.fmax, a.ret,
         {'t', 'recycle', 'lead', a.id, 'policy', cur.policy, 'pool', cur.pool,
          'queue', cur.queue, 'owner', cur.owner, 'by', a.rep, 'reason', a.reason})
local stopped = cur.sla_state
if running then stopped = 'stopped' end
local base = {from = nz(cur.owner), note = note, policy = nz(cur.policy), via = nz(a.via)}
-- The live reason of the move (the assignment's, shown by GET /v1/leads/{id}).
local rejected = 'rejected by ' .. a.rep .. ': ' .. a.reason

if a.how == 'pick' then
  local owner, pool, strategy, why, due = sla_repick(a, cur, {'', function(o, p)
    return rejected .. ' → rerouted to ' .. o .. ' in ' .. p
  end})
  if owner then
    lead_event(a, 'lead.rerouted',
               {event = 'rerouted', owner = owner, pool = pool, strategy = strategy,
                reason = a.reason, by = a.rep, data = base},
               owner, pool, '', due, 'assigned')
    return {'ok', owner, 'assigned', pool or '', '', due}
  end
  base.pick = why  -- nobody eligible: to the chain's queue, saying why
end

if a.how == 'pick' or a.how == 'queue' then
  local live = rejected .. ' → rerouted to queue ' .. a.queue
  if base.pick then live = live .. '; ' .. base.pick end
  sla_to_queue(a, cur, 'queued', stopped, 'lead.rerouted',
               {event = 'rerouted', queue = a.queue, reason = a.reason, by = a.rep, data = base},
               {'', live})
  return {'ok', '', 'queued', '', a.queue, -1}
end

sla_to_queue(a, cur, 'recycled', stopped, 'lead.recycled',
             {event = 'recycled', queue = a.queue, reason = a.reason, by = a.rep, data = base},
             {'', rejected .. ' → nurture (queue ' .. a.queue .. ')'})
return {'ok', '', 'recycled', '', a.queue, -1}
end
local lx_reply = lx_main()
if (a.lxk or 0) > 0 then lx_sync(KEYS[1], KEYS[a.lxk], KEYS[a.lxk + 1], a.id, nil) end
return lx_reply
