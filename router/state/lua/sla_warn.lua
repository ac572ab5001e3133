-- The SLA warning of one lead, at most once per lead and deadline (router/state/sla_warn.py).
-- KEYS[1] = lead hash, KEYS[2] = outbox. ARGV = lead id, the deadline (ms) the caller saw in
-- the SLA schedule, now (ms), outbox MAXLEN, the warning time before a deadline (ms), and which
-- SLA policies that warning time is for: 'in' the comma-separated list ARGV[7], every policy
-- 'out' of it (the service default: all but those with their own warn_before), or 'all'.
--
-- Warns only while the lead's SLA clock still runs on exactly that deadline (not accepted,
-- contacted, rejected, moved or breached since) and the deadline is ahead. The lead hash keeps
-- `sla_warned` = the deadline warned about, set in the same script as the outbox event: of
-- several workers that see the lead, exactly one writes the event; a new deadline (after a
-- reassignment) is warned about again. A deadline set less than the warning time ahead (the
-- owner's assignment, assigned_at or owner_since, is later than due - warn) gets none. The event has the commit's event shape (type, lead_id,
-- at, owner, pool, queue, due_at, state, entry, decision) plus rep, policy and minutes_left.
--
-- Reply: 'warned', or why not: 'gone', 'other' (another policy's warning time), 'changed',
-- 'late', 'closed', 'done', 'short'.
local id, due, now, omax = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local warn, mode, listed = tonumber(ARGV[5]), ARGV[6] or 'all', ARGV[7] or ''
local f = redis.call('HMGET', KEYS[1], 'state', 'owner', 'pool', 'queue', 'due_at', 'sla',
                     'sla_state', 'sla_warned', 'decision', 'assigned_at', 'owner_since')
if not f[1] then return 'gone' end
if mode ~= 'all' then
  local hit = string.find(',' .. listed .. ',', ',' .. (f[6] or '') .. ',', 1, true) ~= nil
  if (mode == 'in') ~= hit then return 'other' end
end
if f[5] ~= due then return 'changed' end
local due_ms = tonumber(due)
if not due_ms or due_ms <= now then return 'late' end
if f[1] ~= 'assigned' and f[1] ~= 'queued' then return 'closed' end
local sla_state = f[7] or ''
if sla_state ~= '' and sla_state ~= 'pending' then return 'closed' end
if f[8] == due then return 'done' end
local since = math.max(tonumber(f[10] or '') or 0, tonumber(f[11] or '') or 0)
if due_ms - since < warn then return 'short' end
redis.call('HSET', KEYS[1], 'sla_warned', due)
local owner, pool, queue, policy = f[2] or '', f[3] or '', f[4] or '', f[6] or ''
local left = math.floor((due_ms - now) / 60000)
local entry = {event = 'sla_warning', at = now, reason = 'the ' .. policy .. ' SLA is due in '
               .. fmt_int(left) .. ' min',
               data = {policy = policy, due_at_ms = due_ms, minutes_left = left}}
if owner ~= '' then entry.owner = owner end
if pool ~= '' then entry.pool = pool end
if queue ~= '' then entry.queue = queue end
redis.call('XADD', KEYS[2], 'NOMKSTREAM', 'MAXLEN', '~', omax, '*', 'type', 'sla.warning',
           'lead_id', id, 'at', fmt_int(now), 'owner', owner, 'rep', owner, 'pool', pool,
           'queue', queue, 'due_at', due, 'state', f[1], 'policy', policy,
           'minutes_left', fmt_int(left), 'entry', cjson.encode(entry),
           'decision', f[9] or '')
return 'warned'
