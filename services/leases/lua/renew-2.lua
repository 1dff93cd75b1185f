--[[
  renew: restart the countdown of a live lease (SQS ChangeMessageVisibility).
  The new deadline never passes the end of the callee's calling window.

  KEYS
    1 leases  ZSET  lease id -> deadline (ms)
    2 lease   HASH  the lease
  ARGV
    1 lease id    2 token    3 lease time to live (ms, 1 s .. 1 day)
    4 calling window end (epoch ms, exclusive; 0 = closed now)    5 clock offset (ms, 0 in production)
  RETURNS
    {0 OK, deadline_ms, volunteer hash}
    {-1 NOT_FOUND}  {-2 NOT_HOLDER}  {-3 EXPIRED}  {-4 ALREADY_COMPLETED}  {-5 RELEASED}
    {-12 DO_NOT_CALL}   the number became do-not-call: the lease ended, do not call it
    {-10 BAD_ARGUMENT, argument}   a malformed argument (its name); nothing changed
]]
--- @include "includes/codes.lua"
--- @include "includes/time.lua"
--- @include "includes/args.lua"
--- @include "includes/lease.lua"
--- @include "includes/holder.lua"

local leases_key, lease_key = KEYS[1], KEYS[2]
--  the lease time to live accepted (ms): 1 s .. 1 day
local MIN_TTL_MS, MAX_TTL_MS = 1000, 86400000

require_count(5)
local lease_id, token = ARGV[1], ARGV[2]
require_region_key(leases_key, require_lease_id('lease id', lease_id))
require_token('token', token)
local ttl_ms = require_int('lease time to live', ARGV[3], MIN_TTL_MS, MAX_TTL_MS)
local window_end_ms = require_epoch_ms('window end', ARGV[4])
local offset_ms = require_offset_ms(ARGV[5])
require_lease_key(lease_key, lease_id)
if bad_argument then
  return { BAD_ARGUMENT, bad_argument }
end

local now = now_ms(offset_ms)
local lease = read_lease(lease_key)
local refusal = check_holder(lease, token, now)
if refusal then
  return { refusal }
end
local deadline = math.min(now + ttl_ms, window_end_ms)
if deadline <= now then
  return { EXPIRED }
end
redis.call('HSET', lease_key, 'deadline_ms', deadline)
redis.call('ZADD', leases_key, deadline, lease_id)
return { OK, deadline, lease['volunteer'] }
