--[[
  complete: record what happened on the call, move the number to its next state and
  append the outcome event to the region's stream, all in one atomic step.

  Answers, by the lease's state:
    live, deadline not passed   -> recorded (0)
    live, deadline passed       -> recorded late (1); the number is still this lease's
    expired (reaped) / released -> recorded late (1); the outcome moves the number only
                                   if no other lease holds it and it is still in play
    dnc (the number was listed  -> recorded late, answered DO_NOT_CALL (-12): the
         while leased, ban-7)      number is out of play; tell the volunteer
    completed                   -> already recorded (2): idempotent, nothing changes,
                                   the first answer's event id is returned
    gone, with a recovered lease -> recorded late (1), as for an expired lease
  A late outcome is never thrown away: the event is always written.

  KEYS
    1 ready    LIST    2 due      ZSET    3 leases    ZSET    4 lease    HASH
    5 holders  HASH    6 attempts HASH    7 expiries  HASH    8 parked   SET
    9 counters HASH   10 dnc      SET    11 outcomes  STREAM
  ARGV
    1 lease id          2 token
    3 outcome           (records.py Outcome value, e.g. "no_answer"; not "expired")
    4 disposition       done | retire | dnc | requeue | defer | retry | callback, one the
                        outcome's rule may have (includes/outcomes.lua)
    5 reached           1 if the outcome reaches the callee, else 0 (as the outcome says)
    6 max attempts      counted attempts after which a retry/callback is done (1..1000)
    7 callback at       epoch ms the callee asked to be called (0 = none)
    8 retention of the ended lease hash (ms, 1 minute .. 90 days)
    9 clock offset (ms, 0 in production)
   10 delay count D, then D retry delays (ms, for attempt 1..D; the last repeats),
      then window count W, then W pairs (start ms, end ms) of the callee's calling
      windows from now on, ascending, not overlapping (D <= 8, W <= 16, delays <= 366
      days)
   then nothing, or the recovered lease: number, attempt, leased at (epoch ms),
      volunteer hash (the token's), guideline, campaign, as a signed lease receipt
      names them (the client checks the signature): used only when the lease hash is
      gone (Redis lost and rebuilt), to record the outcome late instead of NOT_FOUND
  RETURNS
    {0 OK | 1 RECORDED_LATE | 2 ALREADY_RECORDED, event id, volunteer hash, next state,
     number}
      next state: ready | due | done | retired | dnc | unchanged
    {-12 DO_NOT_CALL, event id, volunteer hash, next state, number}   recorded late; the
      number became do-not-call while leased (the lease had ended)
    {-1 NOT_FOUND}  {-2 NOT_HOLDER}
    {-10 BAD_ARGUMENT, argument}   a malformed argument (its name); nothing changed
]]
--- @include "includes/codes.lua"
--- @include "includes/time.lua"
--- @include "includes/args.lua"
--- @include "includes/outcomes.lua"
--- @include "includes/lease.lua"
--- @include "includes/event.lua"
--- @include "includes/outcome.lua"

--  counted attempts a rule may allow at most
local MAX_ATTEMPTS = 1000

local keys = {
  ready = KEYS[1], due = KEYS[2], leases = KEYS[3], lease = KEYS[4], holders = KEYS[5],
  attempts = KEYS[6], expiries = KEYS[7], parked = KEYS[8], counters = KEYS[9],
  dnc = KEYS[10], outcomes = KEYS[11]
}
local lease_id, token, outcome = ARGV[1], ARGV[2], ARGV[3]
require_region_key(keys.ready, require_lease_id('lease id', lease_id))
require_token('token', token)
local rule = {
  disposition = require_rule(outcome, ARGV[4], ARGV[5]),
  reached = tonumber(ARGV[5]),
  max_attempts = require_int('max attempts', ARGV[6], 1, MAX_ATTEMPTS)
}
local callback_at_ms = require_epoch_ms('callback at', ARGV[7])
local retention_ms = require_retention_ms(ARGV[8])
local offset_ms = require_offset_ms(ARGV[9])
local schedule = read_schedule(10)
require_lease_key(keys.lease, lease_id)

--  ARGV after the schedule: nothing, or the recovered lease (a signed receipt's facts)
local RECOVERED_FIELDS = 6

-- The lease as a receipt the client verified names it, for when Redis lost the hash.
local function read_recovered(first)
  local volunteer = require_hex32('volunteer', ARGV[first + 3])
  if volunteer and string.sub(token, 1, 32) ~= volunteer then
    refuse('volunteer')
  end
  local campaign = require_match('campaign', ARGV[first + 5], '^[a-z0-9][a-z0-9_%-]*$', 32)
  if campaign and not string.find(keys.ready, ':c:' .. campaign .. ':{', 1, true) then
    refuse('campaign')
  end
  return {
    number = require_match('number', ARGV[first], '^[1-9]%d%d%d%d%d%d%d%d%d$', 10),
    attempt = require_int('attempt', ARGV[first + 1], 1, MAX_ATTEMPTS),
    leased_at_ms = require_epoch_ms('leased at', ARGV[first + 2]),
    volunteer = volunteer,
    guideline = require_match('guideline', ARGV[first + 4], '^[a-z0-9][a-z0-9_%-]*@%d+$', 72),
    campaign = campaign,
    region = string.sub(lease_id, 1, #lease_id - 33),
    token = token,
    state = 'lost',
  }
end

local recovered = nil
if schedule then
  local tail = #ARGV - schedule.last
  if tail == RECOVERED_FIELDS then
    recovered = read_recovered(schedule.last + 1)
  elseif tail ~= 0 then
    refuse('argument count')
  end
end
if bad_argument then
  return { BAD_ARGUMENT, bad_argument }
end

local now = now_ms(offset_ms)
local lease = read_lease(keys.lease)
if lease == nil then
  if recovered == nil then
    return { NOT_FOUND }
  end
  -- Redis no longer knows the lease (lost, then rebuilt): record it late from the receipt
  lease = recovered
  redis.call('HSET', keys.lease, 'number', lease.number, 'token', token,
    'volunteer', lease.volunteer, 'attempt', lease.attempt, 'leased_at_ms', lease.leased_at_ms,
    'guideline', lease.guideline, 'campaign', lease.campaign, 'region', lease.region)
end
if lease['token'] ~= token then
  return { NOT_HOLDER }
end
if lease['state'] == 'completed' then
  return { ALREADY_RECORDED, lease['event_id'], lease['volunteer'], lease['next_state'],
    lease['number'] }
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
local answer = OK
if lease['state'] == 'dnc' then
  answer = DO_NOT_CALL
elseif late == 1 then
  answer = RECORDED_LATE
end
return { answer, event_id, lease['volunteer'], next_state, number }
