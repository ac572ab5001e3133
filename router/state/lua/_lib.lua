-- Shared by every script: scripts.py prepends this file to each one before SCRIPT LOAD, so
-- the commit and the pool stats judge eligibility with the very same code.

local DAY_TTL = 172800   -- day counters outlive their day in every time zone (keys.py)

-- Why the rep's live state keeps it from taking leads now, or nil. `st` = HMGET status until.
-- Away / out of office with an `until` in the past counts as available again: nobody has to
-- flip the state back by hand for the rep to get leads after a holiday.
local function unavailable(st, now)
  local status = st[1]
  if not status or status == 'available' then return nil end
  local untl = tonumber(st[2] or '')
  if untl and untl <= now then return nil end
  if status == 'out_of_office' then return 'out of office' end
  return status
end

-- A pool member's eligibility facts. m = {rep, weight, in_hours, day, cap}; `base` indexes
-- KEYS: base = rep state, base+1 = rep's day counter, base+2 = rep's open set.
local function member_facts(m, base, now)
  local st = redis.call('HMGET', KEYS[base], 'status', 'until')
  local today = tonumber(redis.call('GET', KEYS[base + 1]) or '0')
  local why = unavailable(st, now)
  if not why and not m[3] then why = 'outside working hours' end
  if not why and m[5] >= 0 and today >= m[5] then why = 'at daily cap' end
  return why, today, st
end

-- Non-stale open leads of a rep: ZCOUNT from the retention horizon, so stale entries never
-- count even before a write prunes them.
local function open_count(key, now, ret)
  return redis.call('ZCOUNT', key, now - ret, '+inf')
end

local function fmt_int(x)
  return string.format('%d', x)
end

-- Make `key` live at least `ttl` ms from now, never shorter than it already does. PEXPIRE GT
-- (Redis >= 7) does it in one call when the new expiry is the later one, the usual case; a key
-- without an expiry (just created) or a later one needs the PTTL. Every scripted call costs
-- the server ~10k instructions (measured under callgrind), so the hot path counts them.
local function extend_ttl(key, ttl)
  if redis.call('PEXPIRE', key, ttl, 'GT') == 0 and redis.call('PTTL', key) == -1 then
    redis.call('PEXPIRE', key, ttl)
  end
end
