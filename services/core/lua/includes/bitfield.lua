--[[
  bitfield_batches(key, op, offsets): one BITFIELD per batch of offsets on a u1 bitmap.
  offsets is a binary string of little-endian unsigned 32-bit integers (4 bytes each).
  op 'GET' reads each bit; op 'SET' sets it to 1 and returns the old bit.
  Returns {OK, bit per offset in order} or {BAD_ARGUMENT} for a bad or too long string.
]]
--  offsets one call takes at most (a chunk of numbers)
local MAX_OFFSETS = 5000
--  bytes per packed offset
local OFFSET_BYTES = 4
--  offsets per BITFIELD command (bounds every unpack: 4 arguments per offset)
local OFFSETS_PER_COMMAND = 250

local function bitfield_batches(key, op, offsets)
  local total = #offsets / OFFSET_BYTES
  if total > MAX_OFFSETS or total ~= math.floor(total) then
    return { BAD_ARGUMENT }
  end
  local reply = { OK }
  local replied = 1
  local position = 1
  local setting = op == 'SET'
  for first = 1, total, OFFSETS_PER_COMMAND do
    local last = math.min(first + OFFSETS_PER_COMMAND - 1, total)
    local args, count = {}, 0
    for _ = first, last do
      local offset
      offset, position = struct.unpack('<I4', offsets, position)
      args[count + 1], args[count + 2], args[count + 3] = op, 'u1', offset
      count = count + 3
      if setting then
        count = count + 1
        args[count] = 1
      end
    end
    local bits = redis.call('BITFIELD', key, unpack(args, 1, count))
    for index = 1, #bits do
      replied = replied + 1
      reply[replied] = bits[index]
    end
  end
  return reply
end
