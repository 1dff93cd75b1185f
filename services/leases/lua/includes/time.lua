--[[
  now_ms(offset_ms): Redis TIME in epoch milliseconds plus a clock offset.
  The offset is 0 in production; tests pass one to move the script's clock.
]]
local function now_ms(offset_ms)
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) + tonumber(offset_ms)
end
