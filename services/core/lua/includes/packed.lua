--[[
  Numbers packed into one argument (cheap to send, cheap to read):

  packed_count(packed, width): how many values of `width` bytes `packed` holds, or nil
  when its length is not a whole number of values.

  read_packed(packed, format, position, count): the next `count` values (struct
  `format`, e.g. '<i8', '<I4') from byte `position`; returns the values, their count
  and the position after them. Callers bound `count`.
]]
local function packed_count(packed, width)
  local count = #packed / width
  if count ~= math.floor(count) then
    return nil
  end
  return count
end

local function read_packed(packed, format, position, count)
  local values = {}
  for index = 1, count do
    values[index], position = struct.unpack(format, packed, position)
  end
  return values, count, position
end
