--[[
  read_lease(key): the fields of a lease hash as a Lua table, or nil if it is gone.
  A lease hash has a fixed, small set of fields (see keys.py, RegionKeys.lease).
  finish_lease(key, state, retention_ms): mark the lease ended and let it expire later,
  so a late or repeated answer can still be matched to it.
]]
local function read_lease(key)
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then
    return nil
  end
  local lease = {}
  for index = 1, #flat, 2 do
    lease[flat[index]] = flat[index + 1]
  end
  return lease
end

local function finish_lease(key, state, retention_ms)
  redis.call('HSET', key, 'state', state)
  redis.call('PEXPIRE', key, retention_ms)
end

--[[
  release_holder(holders_key, number, lease_id): forget that lease_id holds number,
  only if it still does (a later lease of the same number is left alone).
]]
local function release_holder(holders_key, number, lease_id)
  if redis.call('HGET', holders_key, number) == lease_id then
    redis.call('HDEL', holders_key, number)
  end
end
