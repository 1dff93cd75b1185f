--[[
  ban: a number became do-not-call while a lease of this region holds it. The lease
  ends at once (state "dnc"): its holder's next renew, release or complete answers
  DO_NOT_CALL, and the number is out of play, counted as do-not-call. The caller found
  the lease id in the holders hash after adding the number to the do-not-call list
  (dnc.py), or was granted the lease and then found the number listed (client.py).

  KEYS
    1 leases    ZSET   lease id -> deadline (ms)
    2 lease     HASH   the lease holding the number
    3 holders   HASH   number -> lease id
    4 attempts  HASH   number -> counted attempts
    5 expiries  HASH   number -> expiries
    6 counters  HASH   region counters ("dnc"; "leased" for an unseen lease)
    7 dnc       SET    do-not-call numbers of the region (all campaigns)
  ARGV
    1 number (10 digits)    2 lease id    3 retention of the ended lease hash (ms)
    4 seen: 1 if the number may have been shown to the holder (the lease is kept, ended,
      so that its next call answers DO_NOT_CALL), 0 if it was never shown (the client's
      screen right after the grant: the lease is deleted, as if never granted)
  RETURNS
    {0 OK, 1}          the lease ended; the number is on the region's list
    {0 OK, 0}          the lease no longer holds the number; only listed in the region
    {-10 BAD_ARGUMENT, argument}   a malformed argument (its name); nothing changed
]]
--- @include "includes/codes.lua"
--- @include "includes/args.lua"
--- @include "includes/lease.lua"

local leases_key, lease_key, holders_key = KEYS[1], KEYS[2], KEYS[3]
local attempts_key, expiries_key, counters_key, dnc_key = KEYS[4], KEYS[5], KEYS[6], KEYS[7]

require_count(4)
local number = require_match('number', ARGV[1], '^[1-9]%d%d%d%d%d%d%d%d%d$', 10)
local lease_id = ARGV[2]
require_region_key(holders_key, require_lease_id('lease id', lease_id))
local retention_ms = require_retention_ms(ARGV[3])
local seen = require_match('seen', ARGV[4], '^[01]$', 1)
require_lease_key(lease_key, lease_id)
if bad_argument then
  return { BAD_ARGUMENT, bad_argument }
end

redis.call('SADD', dnc_key, number)
if redis.call('HGET', holders_key, number) ~= lease_id then
  return { OK, 0 }
end
redis.call('HDEL', holders_key, number)
redis.call('ZREM', leases_key, lease_id)
redis.call('HINCRBY', counters_key, 'dnc', 1)
redis.call('HDEL', attempts_key, number)
redis.call('HDEL', expiries_key, number)
if seen == '1' then
  finish_lease(lease_key, 'dnc', retention_ms)
else
  -- HDEL of every field removes the hash (the gateway's Redis user has HDEL, not DEL)
  local lease = read_lease(lease_key) or {}
  local fields = {}
  for name in pairs(lease) do
    fields[#fields + 1] = name
  end
  if #fields > 0 then
    redis.call('HDEL', lease_key, unpack(fields))
  end
  redis.call('HINCRBY', counters_key, 'leased', -1)
end
return { OK, 1 }
