--[[
  emit_event(stream_key, lease, lease_id, event_id, outcome, at_ms, late):
  append one outcome event with every field OutcomeEvent (records.py) needs.
  event_id is unique per lease and kind ("<lease id>/complete", "<lease id>/expire"),
  so a consumer can dedupe the at-least-once relay by it.
  lease['next_state'], set by the caller, names what the step did to the number
  ("unchanged" for a late answer that moved nothing): a replay follows it exactly.
]]
local function emit_event(stream_key, lease, lease_id, event_id, outcome, at_ms, late)
  return redis.call('XADD', stream_key, '*',
    'event_id', event_id,
    'campaign', lease['campaign'],
    'region', lease['region'],
    'number', lease['number'],
    'outcome', outcome,
    'attempt', lease['attempt'],
    'lease_id', lease_id,
    'volunteer', lease['volunteer'],
    'guideline', lease['guideline'],
    'leased_at_ms', lease['leased_at_ms'],
    'completed_at_ms', at_ms,
    'late', late,
    'next_state', lease['next_state'] or '')
end
