--[[
  check_holder(lease, token, now): the refusal code for a renew or release of this
  lease by the bearer of token at now, or nil when the bearer holds a live lease.
  A lease whose deadline has passed is expired even before the reaper has seen it; a
  lease ended because its number became do-not-call answers DO_NOT_CALL.
]]
local function check_holder(lease, token, now)
  if lease == nil then
    return NOT_FOUND
  end
  if lease['token'] ~= token then
    return NOT_HOLDER
  end
  local state = lease['state']
  if state == 'completed' then
    return ALREADY_COMPLETED
  elseif state == 'released' then
    return RELEASED
  elseif state == 'dnc' then
    return DO_NOT_CALL
  elseif state ~= 'live' or tonumber(lease['deadline_ms']) <= now then
    return EXPIRED
  end
  return nil
end
