-- Read-only: a pool's members as the commit script would judge them now. KEYS = pool hash,
-- pool day counter, then per member: rep state, rep day counter, rep open set.
-- ARGV[1] = {pool = PoolPlan, now = ms, ret = ms}. Reply: a JSON document (see models.py).
local arg = cjson.decode(ARGV[1])
local p, now, ret = arg.pool, arg.now, arg.ret
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
local pool_full = p.pool_cap >= 0 and used >= p.pool_cap
local flat = redis.call('HGETALL', KEYS[1])
local state = {}
for i = 1, #flat, 2 do state[flat[i]] = flat[i + 1] end
local out = {}
for i, m in ipairs(p.members) do
  local base = 3 + (i - 1) * 3
  local why, today, st = member_facts(m, base, now)
  -- Every reason, not just the first the commit stops at: the stats are for people.
  local reasons = {}
  local away = unavailable(st, now)
  if away then reasons[#reasons + 1] = away end
  if not m[3] then reasons[#reasons + 1] = 'outside working hours' end
  if m[5] >= 0 and today >= m[5] then reasons[#reasons + 1] = 'at daily cap' end
  if pool_full then reasons[#reasons + 1] = 'pool at daily cap' end
  out[i] = {rep = m[1], weight = m[2], in_hours = m[3], cap = m[5], day = m[4],
            eligible = (why == nil and not pool_full), reasons = reasons,
            status = st[1] or 'available', ['until'] = tonumber(st[2] or '') or -1,
            today = today, open = open_count(KEYS[base + 2], now, ret),
            assigned = tonumber(state['n:' .. m[1]] or '0'),
            credit = tonumber(state['cw:' .. m[1]] or '0')}
end
return cjson.encode({used = used, last = state['last'] or '', members = out})
