--[[
  ratelimit: count one request against a sliding-window limit (the gateway's limits per
  volunteer token, per client address and of failed authentications per address). The
  window is a sliding-window counter (as in Cloudflare's and the `limits` library's): the
  count of the current fixed window plus the previous window's count weighted by the
  share of it still inside the sliding window. A refused request is not counted.

  KEYS
    1 window  HASH  one caller's counter: "window" (index of the current fixed window),
                    "current" and "previous" (requests counted in it and the one before)
  ARGV
    1 requests allowed per window (1..1000000000)
    2 window length (ms, 1 s .. 1 day)
    3 clock offset (ms, 0 in production)
  RETURNS
    {0 OK, requests left in the window}
    {-13 RATE_LIMITED, ms until one more request would be counted}
    {-10 BAD_ARGUMENT, argument}   a malformed argument (its name); nothing changed
]]
--- @include "includes/codes.lua"
--- @include "includes/time.lua"
--- @include "includes/args.lua"

local window_key = KEYS[1]
--  the window lengths accepted (ms): 1 s .. 1 day
local MIN_PERIOD_MS, MAX_PERIOD_MS = 1000, 86400000
--  the largest limit accepted (requests per window)
local MAX_LIMIT = 1000000000

require_count(3)
local limit = require_int('limit', ARGV[1], 1, MAX_LIMIT)
local period = require_int('window length', ARGV[2], MIN_PERIOD_MS, MAX_PERIOD_MS)
local offset_ms = require_offset_ms(ARGV[3])
if bad_argument then
  return { BAD_ARGUMENT, bad_argument }
end

local now = now_ms(offset_ms)
local index = math.floor(now / period)
local stored = redis.call('HMGET', window_key, 'window', 'current', 'previous')
local current, previous = tonumber(stored[2]) or 0, tonumber(stored[3]) or 0
local stored_index = tonumber(stored[1])
if stored_index ~= index then
  -- the window moved on: the stored current window is the previous one only if adjacent
  previous = (stored_index == index - 1) and current or 0
  current = 0
end
local elapsed = now - index * period
local weight = (period - elapsed) / period
if previous * weight + current + 1 <= limit then
  current = current + 1
  redis.call('HSET', window_key, 'window', index, 'current', current, 'previous', previous)
  redis.call('PEXPIRE', window_key, 2 * period)
  return { OK, math.floor(limit - previous * weight - current) }
end
-- refused: when does the weighted count leave room for one more?
local room = limit - 1 - current
if room >= 0 and previous > 0 then
  -- later in this window, as the previous window's share shrinks
  local wait = math.ceil(period - period * room / previous) - elapsed
  if wait <= period - elapsed then
    return { RATE_LIMITED, math.max(wait, 1) }
  end
end
-- in the next window, as this window's count becomes the shrinking previous one
local next_wait = math.ceil(period - period * (limit - 1) / current)
return { RATE_LIMITED, period - elapsed + math.max(next_wait, 1) }
