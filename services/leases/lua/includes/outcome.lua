--[[
  Applying an outcome to a number: the retry policy arrives in ARGV (computed by the
  client from its RetryPolicy), the time comes from Redis.

  read_schedule(first): from ARGV[first]: delay_count, delays (ms, one per attempt),
  window_count, then window_count pairs (start_ms, end_ms) of the callee's next calling
  windows, ascending; `last` is the ARGV index of its last value. Both counts are
  capped, so every loop here is bounded. Every value is checked (args.lua); nil when a
  count is malformed.

  fit_into_windows(target_ms, windows): the first instant >= target_ms inside a window
  (target itself when no window given covers or follows it).

  apply_outcome(keys, number, rule, attempt, callback_at_ms, now_ms, schedule):
  moves the number to its next state and returns that state's name:
  'done', 'retired', 'dnc', 'ready' or 'due'.
]]
local MAX_RETRY_DELAYS = 8
local MAX_WINDOWS = 16
--  the longest retry delay accepted (ms): 366 days
local MAX_RETRY_DELAY_MS = 31622400000

local function read_delays(first, count)
  local delays = {}
  for index = 1, count do
    delays[index] = require_int('retry delay', ARGV[first + index], 0, MAX_RETRY_DELAY_MS)
  end
  return delays
end

local function read_windows(first, count)
  local windows, previous_end = {}, 0
  for index = 1, count do
    local start_ms = require_epoch_ms('window start', ARGV[first + 2 * index - 1])
    local end_ms = require_epoch_ms('window end', ARGV[first + 2 * index])
    if start_ms and end_ms and (start_ms < previous_end or end_ms <= start_ms) then
      refuse('windows')
    end
    windows[index] = { start_ms, end_ms }
    previous_end = end_ms or previous_end
  end
  return windows
end

local function read_schedule(first)
  local delay_count = require_int('delay count', ARGV[first], 0, MAX_RETRY_DELAYS)
  if delay_count == nil then
    return nil
  end
  local delays = read_delays(first, delay_count)
  local window_at = first + delay_count + 1
  local window_count = require_int('window count', ARGV[window_at], 0, MAX_WINDOWS)
  if window_count == nil then
    return nil
  end
  local windows = read_windows(window_at, window_count)
  return { delays = delays, windows = windows, last = window_at + 2 * window_count }
end

local function fit_into_windows(target_ms, windows)
  for index = 1, #windows do
    local window = windows[index]
    if target_ms < window[2] then
      if target_ms < window[1] then
        return window[1]
      end
      return target_ms
    end
  end
  return target_ms
end

local function count_attempt(keys, number, attempt)
  local previous = tonumber(redis.call('HGET', keys.attempts, number) or '0')
  if previous == 0 then
    redis.call('HINCRBY', keys.counters, 'attempted', 1)
  end
  if attempt > previous then
    redis.call('HSET', keys.attempts, number, attempt)
    return attempt
  end
  return previous
end

local function finalize(keys, number, counter)
  redis.call('HINCRBY', keys.counters, counter, 1)
  redis.call('HDEL', keys.attempts, number)
  redis.call('HDEL', keys.expiries, number)
  return counter
end

local function schedule_due(keys, number, at_ms)
  redis.call('ZADD', keys.due, at_ms, number)
  return 'due'
end

local function apply_outcome(keys, number, rule, attempt, callback_at_ms, now, schedule)
  if rule.reached == 1 then
    redis.call('HINCRBY', keys.counters, 'reached', 1)
  end
  if rule.disposition == 'requeue' then
    redis.call('LPUSH', keys.ready, number)
    return 'ready'
  end
  if rule.disposition == 'defer' then
    -- the channel could not place the call: no attempt on the person, due again later
    local delay = schedule.delays[1] or 0
    return schedule_due(keys, number, fit_into_windows(now + delay, schedule.windows))
  end
  local attempts = count_attempt(keys, number, attempt)
  if rule.disposition == 'dnc' then
    redis.call('SADD', keys.dnc, number)
    return finalize(keys, number, 'dnc')
  elseif rule.disposition == 'retire' then
    return finalize(keys, number, 'retired')
  elseif rule.disposition == 'done' or attempts >= rule.max_attempts then
    return finalize(keys, number, 'done')
  elseif rule.disposition == 'callback' then
    return schedule_due(keys, number, fit_into_windows(math.max(callback_at_ms, now), schedule.windows))
  end
  local delays = schedule.delays
  local delay = delays[math.min(attempts, #delays)] or 0
  return schedule_due(keys, number, fit_into_windows(now + delay, schedule.windows))
end
