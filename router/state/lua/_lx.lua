-- The list indexes (router/state/lists.py, GET /v1/leads). ONE zset (`lx`), every member
-- scored 0 so it sorts by bytes: CODE \31 VALUE \31 INV \31 ID, INV = 13 digits of
-- 9999999999999 - created ms: a value's leads come newest first, and a page is a ZRANGE BYLEX.
-- CODE (LX_CODES order): a every lead (value ''), s status, t territory, g segment, r grade,
-- x external id, o owner, p pool, q queue, l sla_state. A value holding \31 is not indexed.
-- The `a` entry carries the external id after the lead id (\31 EXT), so the `x` entry goes
-- with it. The lead hash keeps `lx` = INV \31 the values in LX_CODES order: what it is indexed
-- under, so a move (lx_sync) removes its old entries. Pruning, one commit in 16 (by the id's
-- last byte): the oldest `a` entries past the retention (at most 64) with their `x` entries,
-- then by age the commit's own ranges and 2 random others of `lx:vals` (a set of the
-- CODE \31 VALUE ranges in use, `a` and `x` left out: one a lead), so every range is pruned,
-- also those no new lead enters any more. Both keys expire a retention after the last
-- commit (lx) / the last pruning one (lx:vals).
local LX_CODES = {'a', 's', 't', 'g', 'r', 'x', 'o', 'p', 'q', 'l'}

local function lx_member(i, val, inv, id)
  return LX_CODES[i] .. '\31' .. val .. '\31' .. inv .. '\31' .. id
end

-- The `a` entry: with the external id, when the lead has one.
local function lx_all(inv, id, ext)
  local m = 'a\31\31' .. inv .. '\31' .. id
  if ext ~= '' then m = m .. '\31' .. ext end
  return m
end

local function lx_inv(ms)
  return string.format('%013d', 9999999999999 - ms)
end

-- Register the ranges of `vals`, then prune them and 2 random others by age, and renew
-- both keys' TTL.
local function lx_prune(lx_key, lx_vals, now, ret, vals)
  local old = lx_inv(now - ret)
  local gone = redis.call('ZRANGE', lx_key, '(a\31\31' .. old, '(a\31\32', 'BYLEX',
                          'LIMIT', 0, 64)
  if #gone > 0 then
    local rem = {}
    for _, m in ipairs(gone) do
      rem[#rem + 1] = m
      local inv, id, ext = string.match(m, '^a\31\31([^\31]*)\31([^\31]*)\31(.+)$')
      if ext then rem[#rem + 1] = 'x\31' .. ext .. '\31' .. inv .. '\31' .. id end
    end
    redis.call('ZREM', lx_key, unpack(rem))
  end
  local pre = {}
  for i = 2, #LX_CODES do
    if i ~= 6 and vals[i] ~= '' then pre[#pre + 1] = LX_CODES[i] .. '\31' .. vals[i] end
  end
  if #pre > 0 then redis.call('SADD', lx_vals, unpack(pre)) end
  for _, p in ipairs(redis.call('SRANDMEMBER', lx_vals, 2)) do pre[#pre + 1] = p end
  if vals[6] ~= '' then pre[#pre + 1] = 'x\31' .. vals[6] end
  for _, p in ipairs(pre) do
    redis.call('ZREMRANGEBYLEX', lx_key, '(' .. p .. '\31' .. old, '(' .. p .. '\32')
  end
  redis.call('PEXPIRE', lx_key, ret)
  redis.call('PEXPIRE', lx_vals, ret)
end

-- A new lead's entries: one ZADD. `vals` in LX_CODES order (vals[1] = ''). Returns the lead
-- hash's `lx` field.
local function lx_commit(lx_key, lx_vals, id, now, ret, vals)
  local inv = lx_inv(now)
  local args = {}
  for i = 1, #LX_CODES do
    local v = vals[i] or ''
    if string.find(v, '\31', 1, true) then v = '' end
    vals[i] = v
    if i > 1 and v ~= '' then
      args[#args + 1] = 0
      args[#args + 1] = lx_member(i, v, inv, id)
    end
  end
  args[#args + 1] = 0
  args[#args + 1] = lx_all(inv, id, vals[6])
  redis.call('ZADD', lx_key, unpack(args))
  if string.byte(id, -1) % 16 == 0 then
    lx_prune(lx_key, lx_vals, now, ret, vals)
  else
    redis.call('PEXPIRE', lx_key, ret)
  end
  return inv .. '\31' .. table.concat(vals, '\31')
end

-- After a move: the entries follow the lead hash's live owner, pool, queue, sla_state (a
-- running SLA clock without a state is 'pending') and status (when set, else as committed);
-- `over` (code index → value) replaces others (a re-scored grade). Leads stored before the
-- indexes (no `lx`) are left alone.
local function lx_sync(lx_lead, lx_key, lx_vals, id, over)
  local f = redis.call('HMGET', lx_lead, 'lx', 'owner', 'pool', 'queue', 'sla_state', 'due_at',
                       'status')
  if not f[1] then return end
  local old = {}
  for part in string.gmatch(f[1] .. '\31', '([^\31]*)\31') do old[#old + 1] = part end
  local inv, new = old[1], {}
  for i = 1, #LX_CODES do new[i] = old[i + 1] or '' end
  local sla = f[5] or ''
  if sla == '' and (f[6] or '') ~= '' then sla = 'pending' end
  new[7], new[8], new[9], new[10] = f[2] or '', f[3] or '', f[4] or '', sla
  if (f[7] or '') ~= '' then new[2] = f[7] end
  if over then for i, v in pairs(over) do new[i] = v end end
  local rem, add, pre = {}, {}, {}
  for i = 2, #LX_CODES do
    local v, was = new[i], old[i + 1] or ''
    if string.find(v, '\31', 1, true) then v = ''; new[i] = '' end
    if v ~= was then
      if was ~= '' then rem[#rem + 1] = lx_member(i, was, inv, id) end
      if v ~= '' then
        add[#add + 1] = 0; add[#add + 1] = lx_member(i, v, inv, id)
        if i ~= 6 then pre[#pre + 1] = LX_CODES[i] .. '\31' .. v end
      end
    end
  end
  if #rem > 0 then redis.call('ZREM', lx_key, unpack(rem)) end
  if #add > 0 then
    redis.call('ZADD', lx_key, unpack(add))
  end
  if #pre > 0 then
    if redis.call('SADD', lx_vals, unpack(pre)) > 0 and redis.call('PTTL', lx_vals) == -1 then
      local ttl = redis.call('PTTL', lx_key)   -- a range new since the last pruning commit
      if ttl > 0 then redis.call('PEXPIRE', lx_vals, ttl) end
    end
  end
  if #rem > 0 or #add > 0 then
    redis.call('HSET', lx_lead, 'lx', inv .. '\31' .. table.concat(new, '\31'))
  end
end
