--[[
  acquire: lease one number of one region to one volunteer.
  Due retries and callbacks first (due time <= now), then the head of the ready list.
  Do-not-call numbers met on the way are taken out of play, never leased.

  KEYS
    1 ready     LIST   numbers waiting, head first
    2 due       ZSET   number -> due time (ms)
    3 leases    ZSET   lease id -> deadline (ms)
    4 lease     HASH   the new lease (must not exist)
    5 holders   HASH   number -> lease id
    6 attempts  HASH   number -> counted attempts
    7 expiries  HASH   number -> expiries
    8 counters  HASH   region counters
    9 dnc       SET    do-not-call numbers of the region (all campaigns)
  ARGV
    1 lease id (region + "." + 32 hex digits)   2 token (secret, volunteer hash "." 32 hex)
    3 volunteer hash (the token's first part)  4 lease time to live (ms, 1 s .. 1 day)
    5 calling window start (epoch ms)          6 calling window end (epoch ms, exclusive)
    7 guideline "id@version"                   8 campaign
    9 region                                   10 clock offset (ms, 0 in production)
  RETURNS
    {0 OK, number, attempt, deadline_ms, now_ms}
    {0 OK, number, attempt, deadline_ms, now_ms, 1}   a retry: the lease id exists with
                                 this token and is live; that lease, unchanged
    {-6 EMPTY, now_ms}           nothing leasable in this region now
    {-7 CLOSED, now_ms}          now is outside the given calling window
    {-10 BAD_ARGUMENT, argument} a malformed argument (its name; nothing changed), or
                                 "lease id in use": with another token, or ended
]]
--- @include "includes/codes.lua"
--- @include "includes/time.lua"
--- @include "includes/args.lua"

--  numbers popped per call at most (do-not-call or duplicate entries are skipped)
local MAX_CANDIDATES = 32

local ready_key, due_key, leases_key, lease_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local holders_key, attempts_key, expiries_key = KEYS[5], KEYS[6], KEYS[7]
local counters_key, dnc_key = KEYS[8], KEYS[9]
--  the lease time to live accepted (ms): 1 s .. 1 day
local MIN_TTL_MS, MAX_TTL_MS = 1000, 86400000

require_count(10)
local lease_id = ARGV[1]
local region = require_lease_id('lease id', lease_id)
local token = ARGV[2]
local owner = require_token('token', token)
local volunteer = require_hex32('volunteer', ARGV[3])
if owner and volunteer and owner ~= volunteer then
  refuse('volunteer')
end
local ttl_ms = require_int('lease time to live', ARGV[4], MIN_TTL_MS, MAX_TTL_MS)
local window_start_ms = require_epoch_ms('window start', ARGV[5])
local window_end_ms = require_epoch_ms('window end', ARGV[6])
if window_start_ms and window_end_ms and window_end_ms <= window_start_ms then
  refuse('window end')
end
require_match('guideline', ARGV[7], '^[a-z0-9][a-z0-9_%-]*@%d+$', 72)
local campaign = require_match('campaign', ARGV[8], '^[a-z0-9][a-z0-9_%-]*$', 32)
if campaign and not string.find(ready_key, ':c:' .. campaign .. ':{', 1, true) then
  refuse('campaign')
end
if region and ARGV[9] ~= region then
  refuse('region')
end
require_region_key(ready_key, region)
require_lease_key(lease_key, lease_id)
local offset_ms = require_offset_ms(ARGV[10])
if bad_argument then
  return { BAD_ARGUMENT, bad_argument }
end

local now = now_ms(offset_ms)
if now < window_start_ms or now >= window_end_ms then
  return { CLOSED, now }
end
local held = redis.call('HMGET', lease_key, 'token', 'state', 'number', 'attempt', 'deadline_ms')
if held[1] then
  -- a retried acquire (same lease id and token) gets its live lease back, unchanged
  if held[1] == token and held[2] == 'live' and tonumber(held[5]) > now then
    return { OK, held[3], tonumber(held[4]), tonumber(held[5]), now, 1 }
  end
  return { BAD_ARGUMENT, 'lease id in use' }
end

local function next_candidate()
  local due_head = redis.call('ZRANGEBYSCORE', due_key, '-inf', now, 'LIMIT', 0, 1)
  if due_head[1] then
    redis.call('ZREM', due_key, due_head[1])
    return due_head[1]
  end
  return redis.call('LPOP', ready_key)
end

local function grant(number)
  local attempt = tonumber(redis.call('HGET', attempts_key, number) or '0') + 1
  local deadline = math.min(now + ttl_ms, window_end_ms)
  redis.call('HSET', lease_key,
    'number', number, 'token', token, 'volunteer', volunteer, 'attempt', attempt,
    'leased_at_ms', now, 'deadline_ms', deadline, 'guideline', ARGV[7],
    'campaign', ARGV[8], 'region', ARGV[9], 'state', 'live')
  redis.call('ZADD', leases_key, deadline, lease_id)
  redis.call('HSET', holders_key, number, lease_id)
  redis.call('HINCRBY', counters_key, 'leased', 1)
  return { OK, number, attempt, deadline, now }
end

for _ = 1, MAX_CANDIDATES do
  local number = next_candidate()
  if not number then
    return { EMPTY, now }
  end
  if redis.call('SISMEMBER', dnc_key, number) == 1 then
    redis.call('HINCRBY', counters_key, 'dnc', 1)
    redis.call('HDEL', attempts_key, number)
    redis.call('HDEL', expiries_key, number)
  elseif redis.call('HEXISTS', holders_key, number) == 1 then
    redis.call('HINCRBY', counters_key, 'dropped_duplicates', 1)
  else
    return grant(number)
  end
end
return { EMPTY, now }
