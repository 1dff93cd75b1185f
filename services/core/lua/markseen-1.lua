--[[
  markseen: set the bits of numbers of one 3-digit prefix once they are queued, and say
  which were set before (see phonebank/assigner/dedupe.py for why after queueing).

  KEYS
    1 seen      BITMAP  one bit per subscriber number of the prefix (10^7 bits)
  ARGV
    1  subscriber offsets (national number mod 10^7) as little-endian uint32, <= 5000
  RETURNS
    {0 OK, old_1, …, old_N}   each offset's bit before this call (0 = newly seen)
    {-10 BAD_ARGUMENT}        more than 5000 offsets, or a length not a multiple of 4
]]
--- @include "includes/codes.lua"
--- @include "includes/packed.lua"

--  offsets one call takes at most (a chunk of numbers)
local MAX_OFFSETS = 5000
--  bytes per packed offset
local OFFSET_BYTES = 4
--  offsets per BITFIELD command (bounds every unpack: 4 arguments per offset)
local OFFSETS_PER_COMMAND = 250

local key, packed = KEYS[1], ARGV[1]
local total = packed_count(packed, OFFSET_BYTES)
if total == nil or total > MAX_OFFSETS then
  return { BAD_ARGUMENT }
end
local reply, replied = { OK }, 1
local position = 1
for first = 1, total, OFFSETS_PER_COMMAND do
  local offsets, count
  offsets, count, position = read_packed(packed, '<I4', position,
    math.min(OFFSETS_PER_COMMAND, total - first + 1))
  local args = {}
  for index = 1, count do
    local at = 4 * (index - 1)
    args[at + 1], args[at + 2], args[at + 3], args[at + 4] = 'SET', 'u1', offsets[index], 1
  end
  local bits = redis.call('BITFIELD', key, unpack(args, 1, 4 * count))
  for index = 1, #bits do
    replied = replied + 1
    reply[replied] = bits[index]
  end
end
return reply
