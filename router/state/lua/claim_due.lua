-- Claim up to ARGV[3] due SLA deadlines for this worker, atomically. KEYS[1] = SLA schedule
-- (sla:due, lead ids scored by due ms). ARGV = now ms, lease ms, batch size.
--
-- A claim moves each entry's score to `fence` = now + lease: no other worker sees it as due
-- while this one handles it, and escalate.lua acts only while the entry still holds that exact
-- score (the fence), removing or replacing it in the same script. A worker that dies after
-- claiming loses nothing: its lease runs out, the entry is due again, and the next claim gets
-- a later fence (now' >= fence, so now' + lease > fence) that the dead worker could not match
-- even if it came back. Hence: every due lead is escalated exactly once.
--
-- Reply: {fence, id1, id2, ...} (ids in due order, at most the batch size).
local now, lease, batch = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, batch)
local fence = fmt_int(now + lease)
local out = {fence}
for _, id in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', fence, id)
  out[#out + 1] = id
end
return out
