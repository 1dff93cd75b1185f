--[[
  Applying an outcome to a number: the retry policy arrives in ARGV (computed by the
  client from its RetryPolicy), the time comes from Redis.

  read_schedule(first): from ARGV[first]: delay_count, delays (ms, one per attempt),
  window_count, then window_count pairs (start_ms, end_ms) of the callee's next calling
  windows, ascending. Both counts are capped, so every loop here is bounded.

  fit_into_windows(target_ms, windows): the first instant >= target_ms inside a window
  (target itself when no window given covers or follows it).

  apply_outcome(keys, number, rule, attempt, callback_at_ms, now_ms, schedule):
  moves the number to its next state and returns that state's name:
  'done', 'retired', 'dnc', 'ready' or 'due'.
]]
local MAX_RETRY_DELAYS = 8
local MAX_WINDOWS = 16

local function read_schedule(first)
  local delay_count = tonumber(ARGV[first])
  if delay_count == nil or delay_count < 0 or delay_count > MAX_RETRY_DELAYS then
    return nil
  end
  local delays = {}
  for index = 1, delay_count do
    delays[index] = tonumber(ARGV[first + index])
  end
  local window_at = first + delay_count + 1
  local window_count = tonumber(ARGV[window_at])
  if window_count == nil or window_count < 0 or window_count > MAX_WINDOWS then
    return nil
  end
  local windows = {}
  for index = 1, window_count do
    windows[index] = {
      tonumber(ARGV[window_at + 2 * index - 1]), tonumber(ARGV[window_at + 2 * index])
    }
  end
  return { delays = delays, windows = windows }
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
