--[[
  reap: end one lease whose deadline has passed. Its number goes back to the FRONT of
  the ready list, or is parked once it has expired max_expiries times. An "expired"
  outcome event is appended. The reaper calls this once per expired lease id it found
  (ZRANGEBYSCORE leases -inf now LIMIT 0 batch), in bounded batches.

  KEYS
    1 ready    LIST    2 leases   ZSET    3 lease     HASH    4 holders  HASH
    5 expiries HASH    6 parked   SET     7 counters  HASH    8 outcomes STREAM
  ARGV
    1 lease id    2 max expiries (count, 1..1000)
    3 retention of the ended lease hash (ms, 1 minute .. 90 days)
    4 clock offset (ms, 0 in production)
  RETURNS
    {0 OK, next state (ready | parked), volunteer hash, overdue ms}
    {-1 NOT_FOUND}   the lease is no longer live (completed, released or reaped)
    {-11 NOT_DUE}    the lease was renewed meanwhile
    {-10 BAD_ARGUMENT, argument}   a malformed argument (its name); nothing changed
]]
--- @include "includes/codes.lua"
--- @include "includes/time.lua"
--- @include "includes/args.lua"
--- @include "includes/lease.lua"
--- @include "includes/event.lua"

local ready_key, leases_key, lease_key, holders_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local expiries_key, parked_key, counters_key, outcomes_key = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
--  expiries after which a number may be parked, at most
local MAX_EXPIRIES = 1000

require_count(4)
local lease_id = ARGV[1]
require_region_key(ready_key, require_lease_id('lease id', lease_id))
local max_expiries = require_int('max expiries', ARGV[2], 1, MAX_EXPIRIES)
local retention_ms = require_retention_ms(ARGV[3])
local offset_ms = require_offset_ms(ARGV[4])
require_lease_key(lease_key, lease_id)
if bad_argument then
  return { BAD_ARGUMENT, bad_argument }
end

local now = now_ms(offset_ms)
local deadline = redis.call('ZSCORE', leases_key, lease_id)
if not deadline then
  return { NOT_FOUND }
end
deadline = tonumber(deadline)
if deadline > now then
  return { NOT_DUE }
end
redis.call('ZREM', leases_key, lease_id)
local lease = read_lease(lease_key)
if lease == nil then
  return { NOT_FOUND }
end
local number = lease['number']
release_holder(holders_key, number, lease_id)
local next_state = 'ready'
if redis.call('HINCRBY', expiries_key, number, 1) >= max_expiries then
  redis.call('SADD', parked_key, number)
  next_state = 'parked'
else
  redis.call('LPUSH', ready_key, number)
end
redis.call('HINCRBY', counters_key, 'expired', 1)
finish_lease(lease_key, 'expired', retention_ms)
lease['next_state'] = next_state
emit_event(outcomes_key, lease, lease_id, lease_id .. '/expire', 'expired', now, 0)
return { OK, next_state, lease['volunteer'], now - deadline }
