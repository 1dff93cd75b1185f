--[[
  bitfield_batches(key, op): one BITFIELD per batch of ARGV offsets on a u1 bitmap.
  op 'GET' reads each bit; op 'SET' sets it to 1 and returns the old bit.
  Returns {OK, bit per offset in ARGV order} or {BAD_ARGUMENT} past MAX_OFFSETS.
]]
--  offsets one call takes at most (a chunk of numbers)
local MAX_OFFSETS = 5000
--  offsets per BITFIELD command (bounds every unpack: 4 arguments per offset)
local OFFSETS_PER_COMMAND = 250

local function bitfield_batches(key, op)
  local total = #ARGV
  if total > MAX_OFFSETS then
    return { BAD_ARGUMENT }
  end
  local reply = { OK }
  for first = 1, total, OFFSETS_PER_COMMAND do
    local last = math.min(first + OFFSETS_PER_COMMAND - 1, total)
    local args = {}
    for index = first, last do
      args[#args + 1] = op
      args[#args + 1] = 'u1'
      args[#args + 1] = ARGV[index]
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
