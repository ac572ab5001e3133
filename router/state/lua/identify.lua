-- Identify a person, atomically (router/state/engagement.py): link anonymous / user ids to the
-- person (alias keys), fold what those ids did before into the person's own engagement, and
-- merge the traits (lead fields) the message carried.
-- KEYS: 1 target person hash, 2 its seen ids, then per source id: 3 alias key, 4 the source's
--       own person hash, 5 its seen ids (3 keys per source).
-- ARGV[1] = {now, target (person id), sources ([{id, expect}]: the alias id and the value
--            Python read, '' = none), traits (JSON object of lead fields, '' = none), mid, tracked ({type: true}
--            the rules read), maxtypes, maxtimes, horizon, h, ttl, alias_ttl, ids_max, seen_max,
--            seen_ttl, recent_max, link, dom, want}.
-- Reply: as event.lua's, the last element = how many source histories were merged.
--!include _engagement.lua
local a = cjson.decode(ARGV[1])
local K_P, K_SEEN = KEYS[1], KEYS[2]

for i, src in ipairs(a.sources) do
  local v = redis.call('GET', KEYS[3 * i]) or ''
  if v ~= src.expect then return {'moved', v, 0, '', {}, 0} end
end
if not eng_seen(K_SEEN, a.mid, a) then
  return eng_reply('duplicate', K_P, tonumber(redis.call('HGET', K_P, 'seq') or '0'), a)
end

-- Later traits win, key by key.
local function merge_traits(old_raw, old_at, new_raw, new_at)
  local older, newer = old_raw, new_raw
  if new_at < old_at then older, newer = new_raw, old_raw end
  local out = cjson.decode(older)
  for k, v in pairs(cjson.decode(newer)) do out[k] = v end
  return cjson.encode(out), math.max(old_at, new_at)
end

local function set_traits(raw, at)
  local cur = redis.call('HMGET', K_P, 'traits', 'traits_at')
  if cur[1] then raw, at = merge_traits(cur[1], tonumber(cur[2] or '0'), raw, at) end
  redis.call('HSET', K_P, 'traits', raw, 'traits_at', fmt_int(at))
end

local merged = 0
for i, _ in ipairs(a.sources) do
  local k_alias, k_src, k_src_seen = KEYS[3 * i], KEYS[3 * i + 1], KEYS[3 * i + 2]
  redis.call('SET', k_alias, a.target, 'PX', a.alias_ttl)
  -- The ids standing for the person (erasure deletes their aliases too), newest a.ids_max.
  local ids = {}
  for id in string.gmatch(redis.call('HGET', K_P, 'ids') or '', '[^,]+') do
    if id ~= a.sources[i].id then ids[#ids + 1] = id end
  end
  ids[#ids + 1] = a.sources[i].id
  while #ids > a.ids_max do table.remove(ids, 1) end
  redis.call('HSET', K_P, 'ids', table.concat(ids, ','))
  if k_src ~= K_P and redis.call('EXISTS', k_src) == 1 then
    local flat = redis.call('HGETALL', k_src)
    local src = {}
    for j = 1, #flat, 2 do src[flat[j]] = flat[j + 1] end
    for f, v in pairs(src) do
      if string.sub(f, 1, 2) == 'e:' then
        local cur = redis.call('HGET', K_P, f)
        if cur then
          redis.call('HSET', K_P, f, eng_merge(cur, v, a))
        else
          -- A new type: bounded like event.lua's (types the rules read always fit).
          local types = tonumber(redis.call('HGET', K_P, 'nt') or '0')
          if a.tracked[string.sub(f, 3)] or types < a.maxtypes then
            redis.call('HSET', K_P, f, v, 'nt', fmt_int(types + 1))
          end
        end
      elseif f == 'lead' or f == 'dom' then
        redis.call('HSETNX', K_P, f, v)
      end
    end
    if src['traits'] then set_traits(src['traits'], tonumber(src['traits_at'] or '0')) end
    redis.call('DEL', k_src)
    -- The source's message ids dedupe the person's from now on.
    local ids = redis.call('ZRANGE', k_src_seen, 0, -1, 'WITHSCORES')
    for j = 1, #ids, 2 do redis.call('ZADD', K_SEEN, 'NX', ids[j + 1], ids[j]) end
    redis.call('DEL', k_src_seen)
    if #ids > 0 then
      redis.call('ZREMRANGEBYSCORE', K_SEEN, '-inf', '(' .. fmt_int(a.now - a.seen_ttl))
      local extra = redis.call('ZCARD', K_SEEN) - a.seen_max
      if extra > 0 then redis.call('ZREMRANGEBYRANK', K_SEEN, 0, extra - 1) end
      redis.call('PEXPIRE', K_SEEN, a.seen_ttl)
    end
    merged = merged + 1
  end
end
if a.traits ~= '' then set_traits(a.traits, a.now) end
local seq = eng_bump(K_P, 'identify', a.now, a.mid, a)
return eng_reply('ok', K_P, seq, a, merged)
