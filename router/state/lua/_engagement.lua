-- Engagement storage shared by event.lua and identify.lua (router/state/engagement.py).
-- Include with
--   --!include _engagement.lua
--
-- A person hash (eng:ID) holds, besides lead / dom / seq / traits / recent / nt, one field
-- per event type, 'e:<type>' = JSON [n, rem, rem_at, t1, t2, ...]: n events recorded, the
-- newest times (epoch ms, ascending, at most a.maxtimes, none older than a.horizon) and the
-- remainder of the older ones folded into one decayed count `rem` at reference time `rem_at`.
-- router/engine/engagement.py reads it (TypeActivity) and mirrors fold/record/merge exactly.

-- One event at t into the remainder (rem, rem_at); h = the half-life in ms.
local function eng_fold(rem, rem_at, t, h)
  if rem == 0 then return 1, t end
  if t <= rem_at then return rem + 2 ^ (-(rem_at - t) / h), rem_at end
  return rem * 2 ^ (-(t - rem_at) / h) + 1, t
end

-- Sorted times → the stored array: fold what is beyond the horizon or the cap.
local function eng_pack(n, rem, rem_at, times, a)
  local cutoff = a.now - a.horizon
  local drop = 0
  while #times - drop > 0 and (times[drop + 1] <= cutoff or #times - drop > a.maxtimes) do
    drop = drop + 1
    rem, rem_at = eng_fold(rem, rem_at, times[drop], a.h)
  end
  local out = {n, rem, rem_at}
  for i = drop + 1, #times do out[#out + 1] = times[i] end
  return cjson.encode(out)
end

-- The stored array with one more event at t.
local function eng_record(raw, t, a)
  local rec = {0, 0, 0}
  if raw then rec = cjson.decode(raw) end
  local times = {}
  for i = 4, #rec do times[#times + 1] = rec[i] end
  local pos = #times + 1
  while pos > 1 and times[pos - 1] > t do pos = pos - 1 end
  table.insert(times, pos, t)
  return eng_pack(rec[1] + 1, rec[2], rec[3], times, a)
end

-- Two stored arrays of one type as one (identify merges an anonymous visitor into a person).
local function eng_merge(raw_a, raw_b, a)
  local x, y = cjson.decode(raw_a), cjson.decode(raw_b)
  local rem, rem_at = x[2], x[3]
  if y[2] ~= 0 then
    if rem == 0 then
      rem, rem_at = y[2], y[3]
    elseif y[3] <= rem_at then
      rem = rem + y[2] * 2 ^ (-(rem_at - y[3]) / a.h)
    else
      rem = rem * 2 ^ (-(y[3] - rem_at) / a.h) + y[2]
      rem_at = y[3]
    end
  end
  local times = {}
  for i = 4, #x do times[#times + 1] = x[i] end
  for i = 4, #y do times[#times + 1] = y[i] end
  table.sort(times)
  return eng_pack(x[1] + y[1], rem, rem_at, times, a)
end

-- Mark message id `mid` as seen in the person's seen set; false if it was seen before.
-- The set keeps the newest a.seen_max ids of the last a.seen_ttl ms.
local function eng_seen(key, mid, a)
  if mid == '' then return true end
  if redis.call('ZADD', key, 'NX', a.now, mid) == 0 then return false end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. fmt_int(a.now - a.seen_ttl))
  local extra = redis.call('ZCARD', key) - a.seen_max
  if extra > 0 then redis.call('ZREMRANGEBYRANK', key, 0, extra - 1) end
  redis.call('PEXPIRE', key, a.seen_ttl)
  return true
end

-- Bump the person's sequence number and remember what caused it (newest a.recent_max).
local function eng_bump(key, what, at, mid, a)
  local seq = redis.call('HINCRBY', key, 'seq', 1)
  local recent = {}
  local raw = redis.call('HGET', key, 'recent')
  if raw then recent = cjson.decode(raw) end
  recent[#recent + 1] = {seq, what, at, mid}
  while #recent > a.recent_max do table.remove(recent, 1) end
  redis.call('HSET', key, 'recent', cjson.encode(recent))
  return seq
end

-- The reply every engagement script ends with: status, linked lead, seq, account domain and
-- the fields the caller asked for (a.want: traits, the rules' event types...).
local function eng_reply(status, key, seq, a, extra)
  if a.link ~= '' and redis.call('HSETNX', key, 'lead', a.link) == 1 then
    redis.call('HSET', key, 'dom', a.dom)
  end
  redis.call('PEXPIRE', key, a.ttl)
  local f = redis.call('HMGET', key, 'lead', 'dom')
  local want = {}
  if #a.want > 0 then want = redis.call('HMGET', key, unpack(a.want)) end
  return {status, f[1] or '', seq, f[2] or '', want, extra or 0}
end
