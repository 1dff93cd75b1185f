--[[
  markseen: set the bits of numbers of one 3-digit prefix once they are queued.

  KEYS
    1 seen      BITMAP  one bit per subscriber number of the prefix (10^7 bits)
  ARGV
    1  subscriber offsets (national number mod 10^7) as little-endian uint32, <= 5000
  RETURNS
    {0 OK, old_1, …, old_N}   each offset's bit before this call (0 = newly seen)
    {-10 BAD_ARGUMENT}        more than 5000 offsets, or a length not a multiple of 4
]]
--- @include "includes/codes.lua"
--- @include "includes/bitfield.lua"

return bitfield_batches(KEYS[1], 'SET', ARGV[1])
