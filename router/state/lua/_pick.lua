-- The pool pick: ONE implementation for every script that hands a lead to a rep of a pool —
-- commit.lua (new leads), reassign.lua (SLA escalation, rerouted rejects) and the engagement
-- re-qualification. A script includes it with a line of its own:
--
--   --!include _pick.lua
--
-- (scripts.py expands the line; _lib.lua is already prepended to every script).
--
-- Keys: the chain's pools are laid out in KEYS from index `ki` on, each as Store.pool_keys
-- packs it: pool hash, pool day counter, then per member rep state, rep day counter, rep open set.
--
-- ctx = {now = ms, ret = open-set retention ms, id = lead id,
--        exclude = {[rep] = true} or nil   -- earlier owners: never picked again,
--        home = pool id or nil}            -- the pool that already counted this lead: its pool
--                                          -- cap neither blocks nor counts the re-pick.
-- A pick counts for the new owner: rep day counter, rep open set, pool rotation state and the
-- pool day counter (all as the commit always did).
--
-- ctx.facts (a table, or nil: nothing recorded) collects what the pick READ, for the replay
-- (router/state/inputs.py parses it, router/services/_replay_pick.py simulates on it): per pool
-- tried '\30p', id, pool day count; per member read 'm', rep, status, until, day count; the
-- pool hash 'h', field count, fields...; least_loaded's open counts 'o', rep, count. Joined
-- with '\31' once by the caller: no redis.call, no cjson (a few string ops per member).

local function count_assignment(ctx, k_day, k_open)
  if redis.call('INCR', k_day) == 1 then redis.call('EXPIRE', k_day, DAY_TTL) end
  redis.call('ZADD', k_open, ctx.now, ctx.id)
  redis.call('ZREMRANGEBYSCORE', k_open, '-inf', '(' .. fmt_int(ctx.now - ctx.ret))
  redis.call('PEXPIRE', k_open, ctx.ret)
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
local function choose(p, elig, state, k_members, ctx)
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
  local facts = ctx.facts
  for _, i in ipairs(elig) do
    open[i] = open_count(KEYS[k_members + (i - 1) * 3 + 2], ctx.now, ctx.ret)
    if facts then
      local nf = #facts
      facts[nf + 1] = 'o'; facts[nf + 2] = members[i][1]; facts[nf + 3] = open[i]
    end
    if not best or open[i] < open[best]
        or (open[i] == open[best] and (counts[i] < counts[best]
            or (counts[i] == counts[best] and dist(i) < dist(best)))) then
      best = i
    end
  end
  return best, writes, counts
end

local PICK_REASON_ORDER = {'earlier owner', 'away', 'out of office', 'outside working hours',
                           'at daily cap'}

-- Try pool p: returns the picked rep or nil and a sentence saying why nobody.
local function try_pool(p, k_pool, k_pool_day, k_members, ctx)
  local home = ctx.home ~= nil and ctx.home == p.id
  local used = tonumber(redis.call('GET', k_pool_day) or '0')
  local facts = ctx.facts
  if facts then
    local nf = #facts
    facts[nf + 1] = '\30p'; facts[nf + 2] = p.id; facts[nf + 3] = used
  end
  if not home and p.pool_cap >= 0 and used >= p.pool_cap then
    return nil, p.id .. ' is at its pool daily cap (' .. used .. '/' .. p.pool_cap .. ')'
  end
  local elig, tally = {}, {}
  for i, m in ipairs(p.members) do
    local why
    if ctx.exclude and ctx.exclude[m[1]] then
      why = 'earlier owner'
    else
      local today, st
      why, today, st = member_facts(m, k_members + (i - 1) * 3, ctx.now)
      if facts then
        local nf = #facts
        facts[nf + 1] = 'm'; facts[nf + 2] = m[1]; facts[nf + 3] = st[1] or ''
        facts[nf + 4] = st[2] or ''; facts[nf + 5] = today
      end
    end
    if why then tally[why] = (tally[why] or 0) + 1 else elig[#elig + 1] = i end
  end
  if #elig == 0 then
    local parts = {}
    for _, why in ipairs(PICK_REASON_ORDER) do
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
  if facts then
    local nf = #facts
    facts[nf + 1] = 'h'; facts[nf + 2] = #flat
    for i = 1, #flat do facts[nf + 2 + i] = flat[i] end
  end

  local best, writes, counts = choose(p, elig, state, k_members, ctx)
  local rep = p.members[best][1]
  writes[#writes + 1] = 'last'; writes[#writes + 1] = rep
  writes[#writes + 1] = 'lastpos'; writes[#writes + 1] = fmt_int(best)
  writes[#writes + 1] = 'n:' .. rep; writes[#writes + 1] = fmt_int(counts[best] + 1)
  redis.call('HSET', k_pool, unpack(writes))
  if not home then
    if redis.call('INCR', k_pool_day) == 1 then redis.call('EXPIRE', k_pool_day, DAY_TTL) end
  end
  local base = k_members + (best - 1) * 3
  count_assignment(ctx, KEYS[base + 1], KEYS[base + 2])
  return rep, nil
end

-- Walk the overflow chain `pools` (keys from KEYS[ki] on) and pick the first eligible rep.
-- Returns owner (nil = nobody: the lead goes to `queue`), pool, strategy, the reason sentence
-- (nil when there is nothing to say) and the KEYS index after the chain's keys.
local function pick_chain(pools, ki, queue, ctx)
  local owner, pool, strategy = nil, nil, nil
  local notes = {}
  for _, p in ipairs(pools) do
    local k_pool, k_pool_day, k_members = KEYS[ki], KEYS[ki + 1], ki + 2
    ki = ki + 2 + 3 * #p.members   -- advance over every pool's keys, picked or not
    if not owner then
      local rep, why = try_pool(p, k_pool, k_pool_day, k_members, ctx)
      if rep then
        owner, pool, strategy = rep, p.id, p.strategy
      else
        notes[#notes + 1] = why
      end
    end
  end
  local parts = {}
  for i, note in ipairs(notes) do
    local nxt = pools[i + 1]
    if nxt then
      parts[#parts + 1] = note .. ' → overflow ' .. nxt.id
    else
      parts[#parts + 1] = note .. ' → queue ' .. queue
    end
  end
  if owner then parts[#parts + 1] = 'picked by ' .. strategy end
  local reason = nil
  if #parts > 0 then reason = table.concat(parts, '; ') end
  return owner, pool, strategy, reason, ki
end
