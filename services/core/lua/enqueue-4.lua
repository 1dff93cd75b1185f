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
    1  batch id (24 hex digits: BLAKE2b-96 of ARGV 2)
    2  the national numbers (10 digits) packed as little-endian signed 64-bit integers,
       at most 5000 (one argument whatever the batch size: cheap to send and to read)
  RETURNS
    {0 OK, queued, skipped as do-not-call}
    {2 ALREADY_RECORDED, 0, 0}   this batch id was queued before
    {-10 BAD_ARGUMENT}           more than 5000 numbers, or a length not a multiple of 8
]]
--- @include "includes/codes.lua"
--- @include "includes/packed.lua"

local MAX_NUMBERS = 5000
--  bytes of one packed number
local NUMBER_BYTES = 8
--  numbers checked and pushed per command (bounds every unpack)
local BATCH = 500

local ready_key, dnc_key, counters_key, chunks_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local packed = ARGV[2]
local total = packed_count(packed, NUMBER_BYTES)
if total == nil or total > MAX_NUMBERS then
  return { BAD_ARGUMENT }
end
if redis.call('SADD', chunks_key, ARGV[1]) == 0 then
  return { ALREADY_RECORDED, 0, 0 }
end

local queued = 0
local position = 1
for first = 1, total, BATCH do
  local numbers, count
  numbers, count, position = read_packed(packed, '<i8', position,
    math.min(BATCH, total - first + 1))
  local flags = redis.call('SMISMEMBER', dnc_key, unpack(numbers, 1, count))
  local keep, kept = {}, 0
  for index = 1, count do
    if flags[index] == 0 then
      kept = kept + 1
      keep[kept] = numbers[index]
    end
  end
  if kept > 0 then
    redis.call('RPUSH', ready_key, unpack(keep, 1, kept))
    queued = queued + kept
  end
end
local skipped = total - queued
redis.call('HINCRBY', counters_key, 'enqueued', total)
if skipped > 0 then
  redis.call('HINCRBY', counters_key, 'dnc', skipped)
end
return { OK, queued, skipped }
