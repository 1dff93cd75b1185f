--[[
  unseen: which numbers of one 3-digit prefix the assigner has not queued before.
  Read only: the bits are set by markseen-1.lua once the numbers are queued, so a crash
  in between re-queues rather than loses (see phonebank/assigner/dedupe.py).

  KEYS
    1 seen      BITMAP  one bit per subscriber number of the prefix (10^7 bits)
  ARGV
    1  subscriber offsets (national number mod 10^7) as little-endian uint32, <= 5000
  RETURNS
    {0 OK, bit_1, …, bit_N}   the current bit of each offset, in order
    {-10 BAD_ARGUMENT}        more than 5000 offsets, or a length not a multiple of 4
]]
--- @include "includes/codes.lua"
--- @include "includes/bitfield.lua"

return bitfield_batches(KEYS[1], 'GET', ARGV[1])
