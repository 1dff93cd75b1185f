--[[
  renew: restart the countdown of a live lease (SQS ChangeMessageVisibility).
  The new deadline never passes the end of the callee's calling window.

  KEYS
    1 leases  ZSET  lease id -> deadline (ms)
    2 lease   HASH  the lease
  ARGV
    1 lease id    2 token    3 lease time to live (ms)
    4 calling window end (epoch ms, exclusive)    5 clock offset (ms, 0 in production)
  RETURNS
    {0 OK, deadline_ms, volunteer hash}
    {-1 NOT_FOUND}  {-2 NOT_HOLDER}  {-3 EXPIRED}  {-4 ALREADY_COMPLETED}  {-5 RELEASED}
]]
--- @include "includes/codes.lua"
--- @include "includes/time.lua"
--- @include "includes/lease.lua"
--- @include "includes/holder.lua"

local leases_key, lease_key = KEYS[1], KEYS[2]
local lease_id, token = ARGV[1], ARGV[2]
local ttl_ms, window_end_ms = tonumber(ARGV[3]), tonumber(ARGV[4])

local now = now_ms(ARGV[5])
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
