--[[
  complete: record what happened on the call, move the number to its next state and
  append the outcome event to the region's stream, all in one atomic step.

  Answers, by the lease's state:
    live, deadline not passed   -> recorded (0)
    live, deadline passed       -> recorded late (1); the number is still this lease's
    expired (reaped) / released -> recorded late (1); the outcome moves the number only
                                   if no other lease holds it and it is still in play
    completed                   -> already recorded (2): idempotent, nothing changes,
                                   the first answer's event id is returned
  A late outcome is never thrown away: the event is always written.

  KEYS
    1 ready    LIST    2 due      ZSET    3 leases    ZSET    4 lease    HASH
    5 holders  HASH    6 attempts HASH    7 expiries  HASH    8 parked   SET
    9 counters HASH   10 dnc      SET    11 outcomes  STREAM
  ARGV
    1 lease id          2 token
    3 outcome           (records.py Outcome value, e.g. "no_answer")
    4 disposition       done | retire | dnc | requeue | defer | retry | callback
    5 reached           1 if the outcome reached the callee, else 0
    6 max attempts      counted attempts after which a retry/callback is done instead
    7 callback at       epoch ms the callee asked to be called (0 = none)
    8 retention of the ended lease hash (ms)
    9 clock offset (ms, 0 in production)
   10 delay count D, then D retry delays (ms, for attempt 1..D; the last repeats),
      then window count W, then W pairs (start ms, end ms) of the callee's calling
      windows from now on, ascending (D <= 8, W <= 16)
  RETURNS
    {0 OK | 1 RECORDED_LATE | 2 ALREADY_RECORDED, event id, volunteer hash, next state}
      next state: ready | due | done | retired | dnc | unchanged
    {-1 NOT_FOUND}  {-2 NOT_HOLDER}  {-10 BAD_ARGUMENT}
]]
--- @include "includes/codes.lua"
--- @include "includes/time.lua"
--- @include "includes/lease.lua"
--- @include "includes/event.lua"
--- @include "includes/outcome.lua"

local DISPOSITIONS = { done = true, retire = true, dnc = true, requeue = true, defer = true,
  retry = true, callback = true }

local keys = {
  ready = KEYS[1], due = KEYS[2], leases = KEYS[3], lease = KEYS[4], holders = KEYS[5],
  attempts = KEYS[6], expiries = KEYS[7], parked = KEYS[8], counters = KEYS[9],
  dnc = KEYS[10], outcomes = KEYS[11]
}
local lease_id, token, outcome = ARGV[1], ARGV[2], ARGV[3]
local rule = {
  disposition = ARGV[4], reached = tonumber(ARGV[5]), max_attempts = tonumber(ARGV[6])
}
local callback_at_ms, retention_ms = tonumber(ARGV[7]), tonumber(ARGV[8])

local now = now_ms(ARGV[9])
local lease = read_lease(keys.lease)
if lease == nil then
  return { NOT_FOUND }
end
if lease['token'] ~= token then
  return { NOT_HOLDER }
end
if lease['state'] == 'completed' then
  return { ALREADY_RECORDED, lease['event_id'], lease['volunteer'], lease['next_state'] }
end
local schedule = read_schedule(10)
if schedule == nil or not DISPOSITIONS[rule.disposition] or rule.max_attempts == nil then
  return { BAD_ARGUMENT }
end

local number, attempt = lease['number'], tonumber(lease['attempt'])

local function take_out_of_play()
  if redis.call('LREM', keys.ready, 1, number) > 0 then
    return true
  end
  if redis.call('ZREM', keys.due, number) == 1 then
    return true
  end
  return redis.call('SREM', keys.parked, number) == 1
end

local function apply_late()
  local holder = redis.call('HGET', keys.holders, number)
  if (holder and holder ~= lease_id) or not take_out_of_play() then
    if rule.disposition == 'dnc' then
      redis.call('SADD', keys.dnc, number)
    end
    return 'unchanged'
  end
  return apply_outcome(keys, number, rule, attempt, callback_at_ms, now, schedule)
end

local late = 0
local next_state
if lease['state'] == 'live' then
  if tonumber(lease['deadline_ms']) <= now then
    late = 1
  end
  redis.call('ZREM', keys.leases, lease_id)
  release_holder(keys.holders, number, lease_id)
  next_state = apply_outcome(keys, number, rule, attempt, callback_at_ms, now, schedule)
else
  late = 1
  next_state = apply_late()
end
if late == 1 then
  redis.call('HINCRBY', keys.counters, 'late', 1)
end

local event_id = lease_id .. '/complete'
redis.call('HSET', keys.lease, 'outcome', outcome, 'event_id', event_id,
  'completed_at_ms', now, 'next_state', next_state)
finish_lease(keys.lease, 'completed', retention_ms)
lease['next_state'] = next_state
emit_event(keys.outcomes, lease, lease_id, event_id, outcome, now, late)
if late == 1 then
  return { RECORDED_LATE, event_id, lease['volunteer'], next_state }
end
return { OK, event_id, lease['volunteer'], next_state }
