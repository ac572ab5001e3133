-- The list indexes (router/state/lists.py, GET /v1/leads). ONE zset (`lx`), every member
-- scored 0 so it sorts by bytes: CODE \31 VALUE \31 INV \31 ID, INV = 13 digits of
-- 9999999999999 - created ms: a value's leads come newest first, and a page is a ZRANGE BYLEX.
-- CODE (LX_CODES order): a every lead (value ''), s status, t territory, g segment, r grade,
-- x external id, o owner, p pool, q queue, l sla_state. A value holding \31 is not indexed.
-- The `a` entry carries the external id after the lead id (\31 EXT), so the `x` entry goes
-- with it. The lead hash keeps `lx` = INV \31 the values in LX_CODES order: what it is indexed
-- under, so a move (lx_sync) removes its old entries. The commit's members are built by the
-- worker (router/state/codec.py lx_args): Valkey is shared, workers scale out. Pruning, one
-- commit in 16 (by the id's last byte; lx_args decides): the oldest `a` entries past the
-- retention (at most 64) with their `x` entries, then by age the commit's own ranges and 2
-- random others of `lx:vals` (a set of the CODE \31 VALUE ranges in use, `a` and `x` left
-- out: one a lead), so every range is pruned, also those no new lead enters any more.
-- lx:vals expires a retention after the last pruning commit; lx a retention (and up to an
-- eighth more) after the last commit: a commit renews its TTL (to 9/8 of the retention)
-- only when its worker's last renewal is an eighth of a retention old (codec.py LxKeep), a
-- PEXPIRE costing as much Valkey CPU as the ZADD's AOF.
local LX_CODES = {'a', 's', 't', 'g', 'r', 'x', 'o', 'p', 'q', 'l'}

local function lx_member(i, val, inv, id)
  return LX_CODES[i] .. '\31' .. val .. '\31' .. inv .. '\31' .. id
end

local function lx_inv(ms)
  return string.format('%013d', 9999999999999 - ms)
end

-- Register the ranges `pre` (CODE \31 VALUE: the commit's, `x` left out), then prune them,
-- 2 random others and the external id's range `xr` ('' = none) by age, and renew lx:vals'
-- TTL (lx's: lx_commit).
local function lx_prune(lx_key, lx_vals, now, ret, pre, xr)
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
  if #pre > 0 then redis.call('SADD', lx_vals, unpack(pre)) end
  for _, p in ipairs(redis.call('SRANDMEMBER', lx_vals, 2)) do pre[#pre + 1] = p end
  if xr ~= '' then pre[#pre + 1] = xr end
  for _, p in ipairs(pre) do
    redis.call('ZREMRANGEBYLEX', lx_key, '(' .. p .. '\31' .. old, '(' .. p .. '\32')
  end
  redis.call('PEXPIRE', lx_vals, ret)
end

-- A new lead's entries: one ZADD. The caller (router/state/codec.py lx_args) built all it
-- could before the pick: plan.lx = {the `lx` field up to the owner, the member suffix
-- \31 INV \31 ID, an owner route's owner and the queue as indexed, then ZADD's '0', member
-- pairs}; plan.lxp = a pruning commit's ranges (x first), else empty. This adds the owner,
-- pool, queue and SLA state entries (a picked rep or pool id holds no \31: config ids) and
-- returns the lead hash's `lx` field.
local function lx_commit(lx_key, lx_vals, plan, owner, pool, queue, sla)
  local lx = plan.lx
  local sfx, n = lx[2], #lx
  local o, p, q = owner or '', pool or '', ''
  if o ~= '' and plan.kind ~= 'pool' then o = lx[3] end
  if queue then q = lx[4] end
  if o ~= '' then lx[n + 1] = '0'; lx[n + 2] = 'o\31' .. o .. sfx; n = n + 2 end
  if p ~= '' then lx[n + 1] = '0'; lx[n + 2] = 'p\31' .. p .. sfx; n = n + 2 end
  if q ~= '' then lx[n + 1] = '0'; lx[n + 2] = 'q\31' .. q .. sfx; n = n + 2 end
  if sla ~= '' then lx[n + 1] = '0'; lx[n + 2] = 'l\31' .. sla .. sfx; n = n + 2 end
  redis.call('ZADD', lx_key, unpack(lx, 5, n))
  local pr = plan.lxp
  if #pr > 0 then
    local pre = {}
    for i = 2, #pr do pre[i - 1] = pr[i] end
    if o ~= '' then pre[#pre + 1] = 'o\31' .. o end
    if p ~= '' then pre[#pre + 1] = 'p\31' .. p end
    if q ~= '' then pre[#pre + 1] = 'q\31' .. q end
    if sla ~= '' then pre[#pre + 1] = 'l\31' .. sla end
    lx_prune(lx_key, lx_vals, plan.now, plan.ret, pre, pr[1])
  end
  if plan.lxt == 1 then   -- the caller's LxKeep: its last renewal is an eighth of ret old
    redis.call('PEXPIRE', lx_key, string.format('%d', plan.ret + math.floor(plan.ret / 8)))
  end
  return lx[1] .. o .. '\31' .. p .. '\31' .. q .. '\31' .. sla
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
    -- Only a new value may hold \31 (`was` was split on it).
    if v ~= was and string.find(v, '\31', 1, true) then v = ''; new[i] = '' end
    if v ~= was then
      if was ~= '' then rem[#rem + 1] = lx_member(i, was, inv, id) end
      if v ~= '' then
        add[#add + 1] = '0'; add[#add + 1] = lx_member(i, v, inv, id)
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
