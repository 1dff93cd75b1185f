--[[
  unlock: release a lock only if this owner still holds it (atomic compare-and-delete).
  A GET then DEL from the client could delete the lock another owner took in between
  (ours having expired); here the check and the delete are one step.

  KEYS
    1 relay_lock  STRING  the lock; its value is the owner id
  ARGV
    1 owner id (32 lowercase hexadecimal digits)
  RETURNS
    {0 OK}             the lock was ours: deleted
    {-1 NOT_FOUND}     no lock, or another owner's: left as it is
    {-10 BAD_ARGUMENT, argument}   a malformed argument (its name); nothing changed
]]
--- @include "includes/codes.lua"
--- @include "includes/args.lua"

local lock_key = KEYS[1]
require_count(1)
local owner = require_hex32('owner', ARGV[1])
if bad_argument then
  return { BAD_ARGUMENT, bad_argument }
end
if redis.call('GET', lock_key) ~= owner then
  return { NOT_FOUND }
end
redis.call('DEL', lock_key)
return { OK }
