package redisstore

import (
	"github.com/redis/go-redis/v9"
)

// flushScript applies one flush batch and returns the totals of the current
// days, in one round trip. Redis runs a script atomically, so a batch is
// applied whole or not at all, and every key gets its expiry in the same
// step as its increment.
//
// KEYS[1] is the index of days, KEYS[2] the batch's flush id key and
// KEYS[3] the previous batch's flush id key, which the script deletes
// because that batch was acknowledged. KEYS[4...] are the counts hashes of
// the batch's days, then the claim keys of its alerts.
//
// ARGV starts with seven values:
//
//  1. the Tracker's clock, in Unix milliseconds
//  2. the grace, in milliseconds
//  3. the window before now, in milliseconds, in which a day must end to
//     have its totals returned
//  4. the flush id, empty for a batch that only reads
//  5. the prefix of counts keys
//  6. the number of days
//  7. the number of claims
//
// Each day follows as its index member, its end and its expiry in Unix
// milliseconds (the script keeps every key for at least the grace past
// Redis's own time), its number of fields, and its field and increment pairs.
// Then each claim follows as its expiry.
//
// The reply is {applied, claims, totals}: applied is 1 if this run applied
// the increments and 0 if the flush id was already set (a retry of a batch
// whose reply was lost), claims has 1 for each claim the batch holds, and
// totals alternates index members and the HGETALL of their counts.
//
// Counts and increments stay strings from Go to HINCRBY and back, because
// Lua numbers are doubles and would round counts above 2^53. Millisecond
// instants stay below 2^53 until the year 287396, so the script may do
// arithmetic on them.
//
// The counts keys read through the index are not in KEYS. They share the
// hash tag of the keys that are, so Redis Cluster finds them in the same
// slot.
var flushScript = redis.NewScript(`
local index, flushKey, previousKey = KEYS[1], KEYS[2], KEYS[3]
local now, grace, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local flushID, countsPrefix = ARGV[4], ARGV[5]
local ndays, nclaims = tonumber(ARGV[6]), tonumber(ARGV[7])

local function ms(x)
  return string.format('%.0f', x)
end

-- Expiries come from the Tracker's clock, which may lag Redis's own (a
-- test clock set in the past, say). Never let a key expire sooner than
-- the grace from Redis's time, or its counts would vanish as written.
local serverTime = redis.call('TIME')
local floor = tonumber(serverTime[1]) * 1000 + math.floor(tonumber(serverTime[2]) / 1000) + grace
local function expiry(at)
  return ms(math.max(tonumber(at), floor))
end

local applied = 0
if flushID ~= '' then
  if redis.call('SET', flushKey, flushID, 'NX', 'PX', ms(grace)) then
    applied = 1
  end
  if previousKey ~= flushKey then
    redis.call('DEL', previousKey)
  end
end

local a = 8
for i = 1, ndays do
  local key = KEYS[3 + i]
  local member, dayEnd, expireAt, nfields = ARGV[a], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
  a = a + 4
  if applied == 1 then
    for f = 1, nfields do
      -- pcall: an increment that would overflow int64 is skipped, leaving
      -- the field near its maximum, rather than failing the batch halfway.
      redis.pcall('HINCRBY', key, ARGV[a], ARGV[a + 1])
      a = a + 2
    end
    redis.call('PEXPIREAT', key, expiry(expireAt))
    redis.call('ZADD', index, dayEnd, member)
  else
    a = a + 2 * nfields
  end
end

redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. ms(now - grace))
local last = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('PEXPIREAT', index, expiry(tonumber(last[2]) + grace))
end

local claims = {}
for j = 1, nclaims do
  local key = KEYS[3 + ndays + j]
  local won = redis.call('SET', key, flushID, 'NX')
  if won then
    redis.call('PEXPIREAT', key, expiry(ARGV[a]))
  else
    -- A retried batch finds its own claim.
    won = redis.call('GET', key) == flushID
  end
  claims[j] = won and 1 or 0
  a = a + 1
end

local totals = {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', index, '(' .. ms(now - window), '+inf')) do
  totals[#totals + 1] = member
  totals[#totals + 1] = redis.call('HGETALL', countsPrefix .. member)
end
return {applied, claims, totals}
`)
