--[[
  reserve: take one slot of a volunteer's limits before leasing (the volunteer's keys
  live in their own Cluster slot, not the region's). Both limits are checked and taken
  in this one atomic step. The client then acquires in a region; if nothing is leased
  it calls unreserve. An unused or forgotten reservation frees itself at its deadline.

  KEYS
    1 live    ZSET  reservation id -> deadline (ms): open leases
    2 hourly  ZSET  reservation id -> grant time (ms): leases of the rolling hour
  ARGV
    1 reservation id (32 hex digits)    2 lease time to live (ms, 1 s .. 1 day)
    3 concurrent leases allowed (1..1000)    4 leases allowed per rolling hour (1..100000)
    5 rolling hour (ms, 1 s .. 1 day)
    6 clock offset (ms, 0 in production)
  RETURNS
    {0 OK, deadline_ms}
    {-8 CONCURRENT_LIMIT, ms until the earliest open lease ends}
    {-9 HOURLY_LIMIT, ms until the oldest lease of the hour leaves the window}
    {-10 BAD_ARGUMENT, argument}   a malformed argument (its name); nothing changed
]]
--- @include "includes/codes.lua"
--- @include "includes/time.lua"
--- @include "includes/args.lua"

local live_key, hourly_key = KEYS[1], KEYS[2]
--  the lease time to live and the rolling hour accepted (ms): 1 s .. 1 day
local MIN_SPAN_MS, MAX_SPAN_MS = 1000, 86400000
--  the largest caps accepted (count)
local MAX_LIVE, MAX_HOURLY = 1000, 100000

require_count(6)
local reservation = require_hex32('reservation', ARGV[1])
local ttl_ms = require_int('lease time to live', ARGV[2], MIN_SPAN_MS, MAX_SPAN_MS)
local max_live = require_int('concurrent leases', ARGV[3], 1, MAX_LIVE)
local max_hourly = require_int('hourly leases', ARGV[4], 1, MAX_HOURLY)
local hour_ms = require_int('rolling hour', ARGV[5], MIN_SPAN_MS, MAX_SPAN_MS)
local offset_ms = require_offset_ms(ARGV[6])
if bad_argument then
  return { BAD_ARGUMENT, bad_argument }
end

local now = now_ms(offset_ms)
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
