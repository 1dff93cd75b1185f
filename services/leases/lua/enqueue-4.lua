--[[
  enqueue: append numbers (already deduplicated by the caller) to the BACK of the
  region's ready list, skipping do-not-call numbers. The assigner calls it per chunk.
  Idempotent per batch id (a hash of the numbers, made by the client): a batch offered
  again (a worker died after queueing it but before marking its numbers seen, or two
  workers overlapped in a rebalance) queues nothing the second time.

  KEYS
    1 ready     LIST   numbers waiting, head first
    2 dnc       SET    do-not-call numbers of the region (all campaigns)
    3 counters  HASH   region counters ("enqueued", "dnc")
    4 chunks    SET    ids of the batches already queued in this region
  ARGV
    1   batch id (24 hex digits: BLAKE2b-96 of the numbers as little-endian int64)
    2…  the national numbers (10 digits, decimal, no leading 0), at most 5000
  RETURNS
    {0 OK, queued, skipped as do-not-call}
    {2 ALREADY_RECORDED, 0, 0}   this batch id was queued before
    {-10 BAD_ARGUMENT, argument} no numbers or more than 5000 ("argument count"), a
                                 malformed batch id or number; nothing changed
]]
--- @include "includes/codes.lua"
--- @include "includes/args.lua"

local MAX_NUMBERS = 5000
--  numbers checked and pushed per command (bounds every unpack)
local BATCH = 500
--  ARGV index of the first number
local FIRST_NUMBER = 2
--  a national significant number: 10 decimal digits, the first not 0
local NATIONAL_NUMBER = '^[1-9]%d%d%d%d%d%d%d%d%d$'

local ready_key, dnc_key, counters_key, chunks_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local last_number = #ARGV
local total = last_number - FIRST_NUMBER + 1
if total < 1 or total > MAX_NUMBERS then
  return { BAD_ARGUMENT, 'argument count' }
end
require_match('batch id', ARGV[1], '^' .. string.rep('[0-9a-f]', 24) .. '$', 24)
for index = FIRST_NUMBER, last_number do
  if not string.find(ARGV[index], NATIONAL_NUMBER) then
    refuse('number')
    break
  end
end
if bad_argument then
  return { BAD_ARGUMENT, bad_argument }
end
if redis.call('SADD', chunks_key, ARGV[1]) == 0 then
  return { ALREADY_RECORDED, 0, 0 }
end

-- Push the numbers of ARGV[first..last] that are not on the do-not-call list.
local function push_allowed(first, last)
  local flags = redis.call('SMISMEMBER', dnc_key, unpack(ARGV, first, last))
  local keep, kept = {}, 0
  for index = 1, last - first + 1 do
    if flags[index] == 0 then
      kept = kept + 1
      keep[kept] = ARGV[first + index - 1]
    end
  end
  if kept > 0 then
    redis.call('RPUSH', ready_key, unpack(keep, 1, kept))
  end
  return kept
end

-- an empty do-not-call set (the usual case) needs no per-number check
local screened = redis.call('SCARD', dnc_key) > 0
local queued = 0
for first = FIRST_NUMBER, last_number, BATCH do
  local last = math.min(first + BATCH - 1, last_number)
  if screened then
    queued = queued + push_allowed(first, last)
  else
    redis.call('RPUSH', ready_key, unpack(ARGV, first, last))
    queued = queued + last - first + 1
  end
end
local skipped = total - queued
redis.call('HINCRBY', counters_key, 'enqueued', total)
if skipped > 0 then
  redis.call('HINCRBY', counters_key, 'dnc', skipped)
end
return { OK, queued, skipped }
