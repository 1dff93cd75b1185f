--[[
  The outcomes a volunteer may report, the dispositions a retry policy may give each,
  and the outcomes that reach the callee: the mirror of retry_policy.ALLOWED_DISPOSITIONS
  and records.REACHED (tests/unit/test_scripts.py keeps them equal). "expired" is not
  here: only the reaper writes it.

  require_rule(outcome, disposition, reached): the three arguments of complete agree
  (a known outcome, a disposition its rule may have, reached as the outcome says);
  notes the first that does not (see args.lua) and returns nil, else the disposition.
]]
local OUTCOME_DISPOSITIONS = {
  conversation = 'done retry',
  refused = 'done retry',
  no_answer = 'retry done',
  busy = 'retry done',
  voicemail = 'retry done',
  callback = 'callback done',
  wrong_number = 'retire done',
  not_in_service = 'retire done',
  do_not_call = 'dnc',
  skipped = 'requeue defer',
  unreachable_channel = 'defer requeue',
}
local REACHED_OUTCOMES = { conversation = true, refused = true, callback = true }

local function require_rule(outcome, disposition, reached)
  local allowed = require_match('outcome', outcome, '^[a-z_]+$', 32)
    and OUTCOME_DISPOSITIONS[outcome]
  if not allowed then
    return refuse('outcome')
  end
  if require_match('disposition', disposition, '^[a-z]+$', 16) == nil then
    return nil
  end
  if not string.find(' ' .. allowed .. ' ', ' ' .. disposition .. ' ', 1, true) then
    return refuse('disposition')
  end
  local expected = REACHED_OUTCOMES[outcome] and '1' or '0'
  if reached ~= expected then
    return refuse('reached')
  end
  return disposition
end
