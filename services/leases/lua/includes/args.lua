--[[
  Argument checks. Every script runs all of its checks before its first write, so a
  malformed call changes nothing (Redis does not roll a script back). Each check notes
  the name of the FIRST argument that failed in `bad_argument`; once all have run, the
  script answers {BAD_ARGUMENT, bad_argument} when it is set.

  require_count(count)                   ARGV has exactly count entries ("argument count")
  require_int(name, value, min, max)     a decimal integer (optional "-", digits only: no
                                         "1e3", "0x10", " 7", "nan", "inf") in [min, max]
  require_epoch_ms(name, value)          require_int in [0, MAX_EPOCH_MS]
  require_offset_ms(value)               the clock offset, in [-MAX_CLOCK_OFFSET_MS, +…]
  require_retention_ms(value)            how long an ended lease hash is kept, in
                                         [MIN_RETENTION_MS, MAX_RETENTION_MS]
  require_match(name, value, pattern, max_length)  a string of at most max_length bytes
                                         matching the Lua pattern (anchored by the caller)
  require_hex32(name, value)             32 lowercase hex digits (volunteer hash, reservation)
  require_token(name, value)             volunteer hash "." 32 hex digits; returns the hash
  require_lease_id(name, value)          REGION "." 32 hex digits; returns the region
  require_lease_key(key, lease_id)       the lease HASH key names that lease id
  require_region_key(key, region)        the key carries the region's hash tag {r:REGION}
  Each returns the checked value (a number for the integer checks), or nil.
]]
--  digits a double holds exactly (every accepted integer is exact)
local MAX_EXACT_DIGITS = 15
--  latest epoch ms accepted as a time (2100-01-01T00:00:00Z)
local MAX_EPOCH_MS = 4102444800000
--  largest clock offset accepted (ms, 20 years: tests move the clock, production sends 0)
local MAX_CLOCK_OFFSET_MS = 631152000000
--  how long an ended lease hash may be kept (ms): 1 minute .. 90 days
local MIN_RETENTION_MS, MAX_RETENTION_MS = 60000, 7776000000
--  longest region code ("RU-" and up to 12 more)
local MAX_REGION_BYTES = 15
local HEX32 = string.rep('[0-9a-f]', 32)

local bad_argument = nil

local function refuse(name)
  if bad_argument == nil then
    bad_argument = name
  end
  return nil
end

local function require_count(count)
  if #ARGV ~= count then
    return refuse('argument count')
  end
  return count
end

local function require_int(name, value, min, max)
  if type(value) ~= 'string' or #value > MAX_EXACT_DIGITS + 1
      or not string.find(value, '^%-?%d+$') then
    return refuse(name)
  end
  local number = tonumber(value)
  if number == nil or number < min or number > max then
    return refuse(name)
  end
  return number
end

local function require_epoch_ms(name, value)
  return require_int(name, value, 0, MAX_EPOCH_MS)
end

local function require_offset_ms(value)
  return require_int('clock offset', value, -MAX_CLOCK_OFFSET_MS, MAX_CLOCK_OFFSET_MS)
end

local function require_retention_ms(value)
  return require_int('retention', value, MIN_RETENTION_MS, MAX_RETENTION_MS)
end

local function require_match(name, value, pattern, max_length)
  if type(value) ~= 'string' or #value > max_length or not string.find(value, pattern) then
    return refuse(name)
  end
  return value
end

local function require_hex32(name, value)
  return require_match(name, value, '^' .. HEX32 .. '$', 32)
end

local function require_token(name, value)
  if require_match(name, value, '^' .. HEX32 .. '%.' .. HEX32 .. '$', 65) == nil then
    return nil
  end
  return string.sub(value, 1, 32)
end

local function require_lease_id(name, value)
  local pattern = '^[A-Z][A-Z]%-[A-Z0-9_]+%.' .. HEX32 .. '$'
  if require_match(name, value, pattern, MAX_REGION_BYTES + 33) == nil then
    return nil
  end
  return string.sub(value, 1, #value - 33)
end

local function require_lease_key(key, lease_id)
  local suffix = ':lease:' .. tostring(lease_id)
  if lease_id == nil or string.sub(key, -#suffix) ~= suffix then
    return refuse('lease key')
  end
  return key
end

local function require_region_key(key, region)
  if region == nil or not string.find(key, '{r:' .. region .. '}', 1, true) then
    return refuse('region')
  end
  return key
end
