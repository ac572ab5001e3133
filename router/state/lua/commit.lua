-- Pick (if the route is a pool) and commit one lead, atomically. See router/state/commit.py
-- for the KEYS/ARGV layout; the reply is
--   {status, owner, pool, queue, strategy, reason, due_ms (-1 = none), now_ms, other_lead}.
local plan = cjson.decode(ARGV[1])
local now, id, ret = plan.now, plan.id, plan.ret
local K_LEAD, K_HIST, K_OUTBOX, K_SLA, K_QUEUE = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

-- A lead id is committed at most once, whatever the caller does (retries, bugs).
if redis.call('EXISTS', K_LEAD) == 1 then
  local f = redis.call('HMGET', K_LEAD, 'owner', 'pool', 'queue', 'strategy', 'reason', 'due_at',
                       'assigned_at')
  return {'exists', f[1] or '', f[2] or '', f[3] or '', f[4] or '', f[5] or '',
          tonumber(f[6] or '') or -1, tonumber(f[7] or '') or now, id}
end

-- Our idempotency claims must still be ours. One can be lost only if this request ran longer
-- than the in-flight TTL and another request took the key over: then it wins, we yield.
local ki = 6
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

local function count_assignment(k_day, k_open)
  if redis.call('INCR', k_day) == 1 then redis.call('EXPIRE', k_day, DAY_TTL) end
  redis.call('ZADD', k_open, now, id)
  redis.call('ZREMRANGEBYSCORE', k_open, '-inf', '(' .. fmt_int(now - ret))
  redis.call('PEXPIRE', k_open, ret)
end

-- Order of the tie-break rotation: the member after the last one picked comes first. If that
-- one left the pool, whoever now holds its position does (robust across reloads).
local function rotation_start(members, last, lastpos)
  local n = #members
  for i, m in ipairs(members) do
    if m[1] == last then return i % n + 1 end
  end
  return ((lastpos or 1) - 1) % n + 1
end

-- Pick among the eligible members of pool p. `state` = the pool hash as a table.
local function choose(p, elig, state, k_members)
  local members, n = p.members, #p.members
  local start = rotation_start(members, state['last'], tonumber(state['lastpos'] or ''))
  local function dist(i) return (i - start) % n end
  local counts = {}
  for _, i in ipairs(elig) do counts[i] = tonumber(state['n:' .. members[i][1]] or '0') end
  local writes = {}

  if p.strategy == 'round_robin' then
    local best = elig[1]
    for _, i in ipairs(elig) do if dist(i) < dist(best) then best = i end end
    return best, writes, counts
  end

  if p.strategy == 'weighted_round_robin' then
    -- Smooth weighted round robin (nginx): only eligible members gain credit, so a member who
    -- was away neither banks credit for a catch-up burst nor resets anyone else's.
    local cw, total = {}, 0
    for _, i in ipairs(elig) do
      local w = members[i][2]
      cw[i] = tonumber(state['cw:' .. members[i][1]] or '0') + w
      total = total + w
    end
    local best = elig[1]
    for _, i in ipairs(elig) do
      if i ~= best then
        local better = cw[i] > cw[best]
        if cw[i] == cw[best] then
          -- fewer assignments relative to weight, then rotation (no first-member bias)
          local a, b = counts[i] * members[best][2], counts[best] * members[i][2]
          better = a < b or (a == b and dist(i) < dist(best))
        end
        if better then best = i end
      end
    end
    cw[best] = cw[best] - total
    for _, i in ipairs(elig) do
      writes[#writes + 1] = 'cw:' .. members[i][1]
      writes[#writes + 1] = fmt_int(cw[i])
    end
    return best, writes, counts
  end

  -- least_loaded: fewest open (not yet accepted) leads across all pools.
  -- Tie-break counts are kept within one of the leader among eligible members, so a member who
  -- joins or comes back gets its fair turn in ties, not every tie until it has caught up.
  local maxn = 0
  for _, i in ipairs(elig) do if counts[i] > maxn then maxn = counts[i] end end
  for _, i in ipairs(elig) do
    if counts[i] < maxn - 1 then
      counts[i] = maxn - 1
      writes[#writes + 1] = 'n:' .. members[i][1]
      writes[#writes + 1] = fmt_int(counts[i])
    end
  end
  local open, best = {}, nil
  for _, i in ipairs(elig) do
    open[i] = open_count(KEYS[k_members + (i - 1) * 3 + 2], now, ret)
    if not best or open[i] < open[best]
        or (open[i] == open[best] and (counts[i] < counts[best]
            or (counts[i] == counts[best] and dist(i) < dist(best)))) then
      best = i
    end
  end
  return best, writes, counts
end

local REASON_ORDER = {'away', 'out of office', 'outside working hours', 'at daily cap'}

-- Try pool p: returns the picked rep or nil and a sentence saying why nobody.
local function try_pool(p, k_pool, k_pool_day, k_members)
  local used = tonumber(redis.call('GET', k_pool_day) or '0')
  if p.pool_cap >= 0 and used >= p.pool_cap then
    return nil, p.id .. ' is at its pool daily cap (' .. used .. '/' .. p.pool_cap .. ')'
  end
  local elig, tally = {}, {}
  for i, m in ipairs(p.members) do
    local why = member_facts(m, k_members + (i - 1) * 3, now)
    if why then tally[why] = (tally[why] or 0) + 1 else elig[#elig + 1] = i end
  end
  if #elig == 0 then
    local parts = {}
    for _, why in ipairs(REASON_ORDER) do
      if tally[why] then parts[#parts + 1] = tally[why] .. ' ' .. why end
    end
    if #parts == 0 then parts[1] = 'no members' end
    return nil, 'no eligible member in ' .. p.id .. ' (' .. table.concat(parts, ', ') .. ')'
  end

  local flat = redis.call('HGETALL', k_pool)
  local state, keep, stale = {}, {}, {}
  for _, m in ipairs(p.members) do keep['cw:' .. m[1]] = true; keep['n:' .. m[1]] = true end
  for i = 1, #flat, 2 do
    local f = flat[i]
    state[f] = flat[i + 1]
    -- Members removed from the pool leave their fields behind; drop them so the hash stays
    -- the size of the current member list.
    if (string.sub(f, 1, 3) == 'cw:' or string.sub(f, 1, 2) == 'n:') and not keep[f] then
      stale[#stale + 1] = f
    end
  end
  if #stale > 0 then redis.call('HDEL', k_pool, unpack(stale)) end

  local best, writes, counts = choose(p, elig, state, k_members)
  local rep = p.members[best][1]
  writes[#writes + 1] = 'last'; writes[#writes + 1] = rep
  writes[#writes + 1] = 'lastpos'; writes[#writes + 1] = fmt_int(best)
  writes[#writes + 1] = 'n:' .. rep; writes[#writes + 1] = fmt_int(counts[best] + 1)
  redis.call('HSET', k_pool, unpack(writes))
  if redis.call('INCR', k_pool_day) == 1 then redis.call('EXPIRE', k_pool_day, DAY_TTL) end
  local base = k_members + (best - 1) * 3
  count_assignment(KEYS[base + 1], KEYS[base + 2])
  return rep, nil
end

local owner, pool, queue, strategy, reason = nil, nil, nil, nil, plan.why
if plan.kind == 'owner' or plan.kind == 'account_owner' then
  -- Ownership wins over availability and caps: the owner gets it, and it counts.
  owner = plan.target
  count_assignment(KEYS[ki], KEYS[ki + 1])
elseif plan.kind == 'pool' then
  local notes = {}
  for _, p in ipairs(plan.pools) do
    local k_pool, k_pool_day, k_members = KEYS[ki], KEYS[ki + 1], ki + 2
    ki = ki + 2 + 3 * #p.members   -- advance over every pool's keys, picked or not
    if not owner then
      local rep, why = try_pool(p, k_pool, k_pool_day, k_members)
      if rep then
        owner, pool, strategy = rep, p.id, p.strategy
      else
        notes[#notes + 1] = why
      end
    end
  end
  local parts = {}
  for i, note in ipairs(notes) do
    local nxt = plan.pools[i + 1]
    if nxt then
      parts[#parts + 1] = note .. ' → overflow ' .. nxt.id
    else
      parts[#parts + 1] = note .. ' → queue ' .. plan.queue
    end
  end
  if owner then parts[#parts + 1] = 'picked by ' .. strategy end
  if not owner then queue = plan.queue end
  if #parts > 0 then reason = table.concat(parts, '; ') end
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
  if redis.call('PTTL', K_SLA) < ttl then redis.call('PEXPIRE', K_SLA, ttl) end
end

local state = 'queued'
if owner then state = 'assigned' end
local due_s = ''
if due >= 0 then due_s = fmt_int(due) end
redis.call('HSET', K_LEAD, 'decision', ARGV[2], 'state', state, 'owner', owner or '',
           'pool', pool or '', 'queue', queue or '', 'strategy', strategy or '',
           'reason', reason, 'rule', plan.rule, 'sla', plan.sla, 'route', plan.kind,
           'assigned_at', fmt_int(now), 'updated_at', fmt_int(now), 'due_at', due_s,
           'reassignments', '0')
redis.call('PEXPIRE', K_LEAD, ttl)

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
redis.call('RPUSH', K_HIST, created, step)
redis.call('LTRIM', K_HIST, -plan.hmax, -1)
redis.call('PEXPIRE', K_HIST, ttl)

redis.call('XADD', K_OUTBOX, 'MAXLEN', '~', plan.omax, '*', 'type', 'lead.' .. state,
           'lead_id', id, 'at', fmt_int(now), 'owner', owner or '', 'pool', pool or '',
           'queue', queue or '', 'due_at', due_s, 'decision', ARGV[2])

for i, c in ipairs(plan.claims) do
  redis.call('SET', KEYS[5 + i], c[2], 'PX', ttl)
end

return {state, owner or '', pool or '', queue or '', strategy or '', reason, due, now, ''}
