--[[
  Return codes shared by every script: the first element of each reply.
  Non-negative codes are answers, negative codes are refusals.
  Listed again, with their meaning per operation, in docs/lease-protocol.md.
]]
local OK = 0
local RECORDED_LATE = 1
local ALREADY_RECORDED = 2
local NOT_FOUND = -1
local NOT_HOLDER = -2
local EXPIRED = -3
local ALREADY_COMPLETED = -4
local RELEASED = -5
local EMPTY = -6
local CLOSED = -7
local CONCURRENT_LIMIT = -8
local HOURLY_LIMIT = -9
local BAD_ARGUMENT = -10
local NOT_DUE = -11
local DO_NOT_CALL = -12
local RATE_LIMITED = -13
