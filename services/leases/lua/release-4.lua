--[[
  release: the volunteer gives the number back without calling. It goes to the FRONT
  of the ready list and no attempt is counted.

  KEYS
    1 ready    LIST  numbers waiting, head first
    2 leases   ZSET  lease id -> deadline (ms)
    3 lease    HASH  the lease
    4 holders  HASH  number -> lease id
  ARGV
    1 lease id    2 token    3 retention of the ended lease hash (ms, 1 minute .. 90 days)
    4 clock offset (ms, 0 in production)
  RETURNS
    {0 OK, volunteer hash}
    {-1 NOT_FOUND}  {-2 NOT_HOLDER}  {-3 EXPIRED}  {-4 ALREADY_COMPLETED}  {-5 RELEASED}
    {-12 DO_NOT_CALL}   the number became do-not-call: the lease ended, do not call it
    {-10 BAD_ARGUMENT, argument}   a malformed argument (its name); nothing changed
]]
--- @include "includes/codes.lua"
--- @include "includes/time.lua"
--- @include "includes/args.lua"
--- @include "includes/lease.lua"
--- @include "includes/holder.lua"

local ready_key, leases_key, lease_key, holders_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
require_count(4)
local lease_id, token = ARGV[1], ARGV[2]
require_region_key(ready_key, require_lease_id('lease id', lease_id))
require_token('token', token)
local retention_ms = require_retention_ms(ARGV[3])
local offset_ms = require_offset_ms(ARGV[4])
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
redis.call('ZREM', leases_key, lease_id)
release_holder(holders_key, lease['number'], lease_id)
redis.call('LPUSH', ready_key, lease['number'])
finish_lease(lease_key, 'released', retention_ms)
return { OK, lease['volunteer'] }
