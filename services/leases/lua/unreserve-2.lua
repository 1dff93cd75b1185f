--[[
  unreserve: give back a reservation that led to no lease (both limits).

  KEYS
    1 live    ZSET  reservation id -> deadline (ms)
    2 hourly  ZSET  reservation id -> grant time (ms)
  ARGV
    1 reservation id
  RETURNS
    {0 OK, reservations removed (0..2)}
]]
--- @include "includes/codes.lua"

local removed = redis.call('ZREM', KEYS[1], ARGV[1]) + redis.call('ZREM', KEYS[2], ARGV[1])
return { OK, removed }
