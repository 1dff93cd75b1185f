--[[
  unreserve: give back a reservation that led to no lease (both limits).

  KEYS
    1 live    ZSET  reservation id -> deadline (ms)
    2 hourly  ZSET  reservation id -> grant time (ms)
  ARGV
    1 reservation id (32 hex digits)
  RETURNS
    {0 OK, reservations removed (0..2)}
    {-10 BAD_ARGUMENT, argument}   a malformed argument (its name); nothing changed
]]
--- @include "includes/codes.lua"
--- @include "includes/args.lua"

require_count(1)
require_hex32('reservation', ARGV[1])
if bad_argument then
  return { BAD_ARGUMENT, bad_argument }
end

local removed = redis.call('ZREM', KEYS[1], ARGV[1]) + redis.call('ZREM', KEYS[2], ARGV[1])
return { OK, removed }
