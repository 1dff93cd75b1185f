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
  local position = 1
  for first = 1, total, OFFSETS_PER_COMMAND do
    local last = math.min(first + OFFSETS_PER_COMMAND - 1, total)
    local args = {}
    for _ = first, last do
      local offset
      offset, position = struct.unpack('<I4', offsets, position)
      args[#args + 1] = op
      args[#args + 1] = 'u1'
      args[#args + 1] = offset
      if op == 'SET' then
        args[#args + 1] = 1
      end
    end
    local bits = redis.call('BITFIELD', key, unpack(args))
    for index = 1, #bits do
      reply[#reply + 1] = bits[index]
    end
  end
  return reply
end
