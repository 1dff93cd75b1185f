--[[
  reserve: take one slot of a volunteer's limits before leasing (the volunteer's keys
  live in their own Cluster slot, not the region's). Both limits are checked and taken
  in this one atomic step. The client then acquires in a region; if nothing is leased
  it calls unreserve. An unused or forgotten reservation frees itself at its deadline.

  KEYS
    1 live    ZSET  reservation id -> deadline (ms): open leases
    2 hourly  ZSET  reservation id -> grant time (ms): leases of the rolling hour
  ARGV
    1 reservation id    2 lease time to live (ms)    3 concurrent leases allowed
    4 leases allowed per rolling hour    5 rolling hour (ms)
    6 clock offset (ms, 0 in production)
  RETURNS
    {0 OK, deadline_ms}
    {-8 CONCURRENT_LIMIT, ms until the earliest open lease ends}
    {-9 HOURLY_LIMIT, ms until the oldest lease of the hour leaves the window}
]]
--- @include "includes/codes.lua"
--- @include "includes/time.lua"

local live_key, hourly_key = KEYS[1], KEYS[2]
local reservation, ttl_ms = ARGV[1], tonumber(ARGV[2])
local max_live, max_hourly, hour_ms = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])

local now = now_ms(ARGV[6])
redis.call('ZREMRANGEBYSCORE', live_key, '-inf', now)
redis.call('ZREMRANGEBYSCORE', hourly_key, '-inf', now - hour_ms)
if redis.call('ZCARD', live_key) >= max_live then
  local earliest = redis.call('ZRANGE', live_key, 0, 0, 'WITHSCORES')
  return { CONCURRENT_LIMIT, tonumber(earliest[2]) - now }
end
if redis.call('ZCARD', hourly_key) >= max_hourly then
  local oldest = redis.call('ZRANGE', hourly_key, 0, 0, 'WITHSCORES')
  return { HOURLY_LIMIT, tonumber(oldest[2]) + hour_ms - now }
end
local deadline = now + ttl_ms
redis.call('ZADD', live_key, deadline, reservation)
redis.call('ZADD', hourly_key, now, reservation)
redis.call('PEXPIRE', live_key, ttl_ms)
redis.call('PEXPIRE', hourly_key, hour_ms)
return { OK, deadline }
