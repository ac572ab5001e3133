-- The funnel aggregates (router/state/funnel.py): per UTC day of routing, the leads routed
-- in `funnel:routed:<day>` (field: the lead's 8 groups joined by \31, counted by commit.lua:
-- funnel_commit, one write per lead), and per dimension (segment, territory, source, pool,
-- owner, grade, status, rule) one hash `funnel:<dim>:<day>` with, for each group g of the
-- dimension (fields joined by \31):
--   g n                  leads routed: a past day's combinations summed (funnel_fold.lua)
--   g s <stage>          leads that reached the stage (each lead once; a chain stage implies
--                        the chain stages before it)
--   g v <from> <to>      the time between two stages, one little-endian blob: the sum in ms
--                        (u64), then a u32 count per histogram bucket k = 0 below 1 s, else
--                        1 + floor(8 log2(seconds)) (capped at 240), up to the highest bucket
--                        used. The count is the buckets' sum. A report adds the days' blobs
--                        as big integers (no lane nears its width).
--   g a <CUR>            won amount in 1/10000 of the currency
--   g w <CUR>            won leads with an amount in that currency
-- The lead keeps its groups (`fg`, in the dimensions' order), the stages counted (`fc`) and
-- the last amount reported in 1/10000 (`units`).
-- Scripts that include this pass the day's 8 keys from KEYS[fk] on; every key expires at
-- `fexp` (the day's end + retention + 2 days).

local FUNNEL_SEP = '\31'
-- router/state/keys.py FUNNEL_DIMS, in the same order (tests/state/test_funnel.py checks)
local FUNNEL_DIMS = {'segment', 'territory', 'source', 'pool', 'owner', 'grade', 'status', 'rule'}

local function funnel_group(v)
  if not v or v == '' then return '(none)' end
  return v
end

-- Commit: count the lead as routed in each of its groups; `fields` (the lead's HSET) gets
-- the groups (`fg`). plan.fg holds the groups Python knows; pool (4) and owner (5) come from
-- the pick. The day's routed hash is the key before the person index (the last key when
-- plan.person is 1).
local function funnel_commit(plan, owner, pool, fields)
  local g = plan.fg
  if not g or #g == 0 then return end
  local key = KEYS[#KEYS - (plan.person or 0)]
  g[4] = funnel_group(pool)
  g[5] = funnel_group(owner)
  local combo = table.concat(g, FUNNEL_SEP)
  -- One write for all dimensions: the combination of the lead's groups (funnel_fold.lua
  -- sums a past day's combinations into the dimensions' hashes, once).
  if redis.call('HINCRBY', key, combo, 1) == 1 then
    redis.call('PEXPIREAT', key, plan.now - plan.now % 86400000 + plan.ret + 3 * 86400000)
  end
  fields[#fields + 1] = 'fg'
  fields[#fields + 1] = combo
end

local function funnel_bucket(ms)
  local s = ms / 1000
  if s < 1 then return 0 end
  return math.min(240, 1 + math.floor(8 * math.log(s) / math.log(2)))
end

-- Add a time of `d` ms to the blob `field` of hash `key`: the sum, and one to bucket k.
local function funnel_hist(key, field, d, k)
  local blob = redis.call('HGET', key, field) or ''
  local need = 8 + (k + 1) * 4
  if #blob < need then blob = blob .. string.rep('\0', need - #blob) end
  local off = 8 + k * 4
  local sum = struct.unpack('<I8', blob, 1) + d
  local v = struct.unpack('<I4', blob, off + 1) + 1
  redis.call('HSET', key, field, struct.pack('<I8', sum) .. string.sub(blob, 9, off)
             .. struct.pack('<I4', v) .. string.sub(blob, off + 5))
end

-- The lead's groups, counted stages and stage times (ms; `routed` = assigned_at, `accepted`
-- = the SLA's accepted_at, else stg:accepted) as stored now.
local function funnel_read(fs)
  local names = {'fg', 'fc', 'assigned_at', 'accepted_at'}
  for _, s in ipairs(fs.stages) do names[#names + 1] = 'stg:' .. s end
  local v = redis.call('HMGET', KEYS[1], unpack(names))
  local t = {routed = tonumber(v[3] or '')}
  for i, s in ipairs(fs.stages) do t[s] = tonumber(v[4 + i] or '') end
  if tonumber(v[4] or '') then t.accepted = tonumber(v[4]) end
  return v[1] or '', v[2] or '', t
end

-- The lead has just reached `stage` (its time is stored): count it (and the chain stages it
-- implies) once, record the times between it and the stages around it, add the won amount
-- (`units` 1/10000 of `cur`; -1 = none). Returns the stages newly counted.
local function funnel_apply(a, fs, stage, units, cur)
  local fg, fc, t = funnel_read(fs)
  if fg == '' or (a.fk or 0) == 0 then return {} end   -- routed before funnels existed
  local groups = {}
  for g in string.gmatch(fg, '[^' .. FUNNEL_SEP .. ']+') do groups[#groups + 1] = g end
  local counted = {}
  for s in string.gmatch(fc, '[^,]+') do counted[s] = true end
  local function incr(field, by)
    for i, g in ipairs(groups) do
      redis.call('HINCRBY', KEYS[a.fk + i - 1], g .. FUNNEL_SEP .. field, fmt_int(by))
    end
  end
  local new, chained = {}, false
  for _, s in ipairs(fs.chain) do if s == stage then chained = true end end
  if chained then
    for _, s in ipairs(fs.chain) do
      if not counted[s] then new[#new + 1] = s; counted[s] = true end
      if s == stage then break end
    end
  elseif not counted[stage] then
    new[1] = stage; counted[stage] = true
  end
  for _, s in ipairs(new) do
    incr('s' .. FUNNEL_SEP .. s, 1)
    if s == fs.won and units >= 0 and cur ~= '' then
      incr('a' .. FUNNEL_SEP .. cur, units)
      incr('w' .. FUNNEL_SEP .. cur, 1)
    end
  end
  for _, p in ipairs(fs.pairs) do
    if (p[1] == stage or p[2] == stage) and t[p[1]] and t[p[2]] then
      local d = math.max(0, t[p[2]] - t[p[1]])
      local field = FUNNEL_SEP .. 'v' .. FUNNEL_SEP .. p[1] .. FUNNEL_SEP .. p[2]
      local k = funnel_bucket(d)
      for i, g in ipairs(groups) do funnel_hist(KEYS[a.fk + i - 1], g .. field, d, k) end
    end
  end
  if #new > 0 then
    local all = {}
    for _, s in ipairs(fs.stages) do if counted[s] then all[#all + 1] = s end end
    redis.call('HSET', KEYS[1], 'fc', table.concat(all, ','))
  end
  for i = 1, #groups do redis.call('PEXPIREAT', KEYS[a.fk + i - 1], a.fexp) end
  return new
end

-- owner.lua: an accept / contacted is the funnel's first stages. `cur` = the lead before the
-- action (its accepted_at), `state` = accepted | contacted. accepted is the SLA's accepted_at
-- (never copied); contacted is kept as stg:contacted (the SLA keeps no time for it).
local function funnel_owner(a, cur, state)
  if (a.fk or 0) == 0 then return end
  if cur.accepted_at == '' and redis.call('HEXISTS', KEYS[1], 'stg:accepted') == 0 then
    funnel_apply(a, a.fs, 'accepted', -1, '')
  end
  if state == 'contacted' and redis.call('HSETNX', KEYS[1], 'stg:contacted', fmt_int(a.now)) == 1
  then
    funnel_apply(a, a.fs, 'contacted', -1, '')
  end
end
