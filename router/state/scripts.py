"""The Lua scripts of the Redis store. Each runs atomically; each write about a lease or a ledger batch is
guarded by the id's bits, so a command that ran late (Redis stalled past the client's timeout, then woke
and ran what was in its sockets) and its replay from a journal cannot both count.

Keys under the prefix ``P``:

- ``P b:...`` a budget counter (integer) and ``P b:...:s`` the settled use that explains it: the final use of
  every lease closed against it; both expire an hour after the window ends;
- ``P leases`` open leases (zset: id by expiry) and ``P lease`` their counters (hash: id -> one line per
  counter, ``key TAB amount TAB unanswered TAB expire_at``), for whichever replica reaps them;
- ``P index`` live counters (zset by expiry) and ``P meta`` what each one is (``budget TAB scope TAB limit
  TAB window``), for the invariant check;
- ``P a:<replica>:<chunk>`` bits per id (two per sequence number: applied, closed), kept ``KEEP`` seconds
  after their last write.

The invariant: every counter = its settled use + what its open leases reserve (``SNAPSHOT``).

``P marker`` is set by the first replica to connect; every write script checks that it is the one the
caller knows and otherwise fails with ``FORGOT``, so that no write lands unnoticed on a Redis that restarted
without its data (a new connection would not fail): the caller then adds its share again first.
One Redis (a primary, with replicas or Sentinel), not Redis Cluster: a batch touches many requests' keys.
"""

from __future__ import annotations

# ARGV: prefix, keep_s, marker ('': unchecked), number of requests, then per request: id, bits key, bit
# offset, expires_at, force (0/1), number of counters, then per counter: key, cap (-1: none), amount,
# expire_at, unanswered, meta.
# Returns per request: ok, the 1-based index of the counter without room (0), its value, the number of
# values that follow, the values.
RESERVE = """
local P, KEEP = ARGV[1], ARGV[2]
if ARGV[3] ~= '' and redis.call('GET', P .. 'marker') ~= ARGV[3] then
  return redis.error_reply('FORGOT: the state store lost its data (its marker is gone)')
end
local leases, payloads, index, meta = P .. 'leases', P .. 'lease', P .. 'index', P .. 'meta'
local out = {}
local a = 5
for r = 1, tonumber(ARGV[4]) do
  local id, bk, off, exp = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2]), ARGV[a + 3]
  local force, n = ARGV[a + 4], tonumber(ARGV[a + 5])
  local c = a + 6
  a = c + 6 * n
  if redis.call('GETBIT', bk, off) == 1 then
    -- applied before (a command that ran late, and now its replay): nothing again
    out[#out + 1] = 1; out[#out + 1] = 0; out[#out + 1] = 0; out[#out + 1] = n
    for i = 0, n - 1 do out[#out + 1] = tonumber(redis.call('GET', ARGV[c + 6 * i]) or '0') end
  else
    local bad, used = 0, 0
    if force == '0' then
      for i = 0, n - 1 do
        local cap = tonumber(ARGV[c + 6 * i + 1])
        if cap >= 0 then
          local u = tonumber(redis.call('GET', ARGV[c + 6 * i]) or '0')
          if u + tonumber(ARGV[c + 6 * i + 2]) > cap then
            bad, used = i + 1, u
            break
          end
        end
      end
    end
    if bad > 0 then
      out[#out + 1] = 0; out[#out + 1] = bad; out[#out + 1] = used; out[#out + 1] = 0
    else
      redis.call('SETBIT', bk, off, 1)
      redis.call('EXPIRE', bk, KEEP)
      local lines = {}
      out[#out + 1] = 1; out[#out + 1] = 0; out[#out + 1] = 0; out[#out + 1] = n
      for i = 0, n - 1 do
        local k, amount, e = ARGV[c + 6 * i], ARGV[c + 6 * i + 2], ARGV[c + 6 * i + 3]
        out[#out + 1] = redis.call('INCRBY', k, amount)
        redis.call('EXPIREAT', k, e)
        if redis.call('ZADD', index, 'NX', e, k) == 1 then
          redis.call('HSET', meta, k, ARGV[c + 6 * i + 5])
        end
        lines[#lines + 1] = k .. '\\t' .. amount .. '\\t' .. ARGV[c + 6 * i + 4] .. '\\t' .. e
      end
      redis.call('ZADD', leases, exp, id)
      redis.call('HSET', payloads, id, table.concat(lines, '\\n'))
    end
  end
end
return out
"""

# ARGV: prefix, keep_s, marker, number of leases, then per lease: id, bits key, bit offset, release (0/1), number
# of counters, then per counter: key, amount, final, unanswered, expire_at, meta.
# A lease closes once. Open: each counter moves from its amount to its final. Reaped meanwhile (closed as
# unanswered): from unanswered to final. Never applied: released, nothing (and a late reservation is
# ignored from now on); settled, the finals are added.
SETTLE = """
local P, KEEP = ARGV[1], ARGV[2]
if ARGV[3] ~= '' and redis.call('GET', P .. 'marker') ~= ARGV[3] then
  return redis.error_reply('FORGOT: the state store lost its data (its marker is gone)')
end
local leases, payloads, index, meta = P .. 'leases', P .. 'lease', P .. 'index', P .. 'meta'
local a = 5
for r = 1, tonumber(ARGV[4]) do
  local id, bk, off = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  local release, n = ARGV[a + 3], tonumber(ARGV[a + 4])
  local c = a + 5
  a = c + 6 * n
  if redis.call('SETBIT', bk, off + 1, 1) == 0 then
    redis.call('EXPIRE', bk, KEEP)
    local mode
    if redis.call('SETBIT', bk, off, 1) == 0 then
      if release == '1' then mode = 'none' else mode = 'full' end
    elseif redis.call('ZREM', leases, id) == 1 then
      redis.call('HDEL', payloads, id)
      mode = 'open'
    else
      mode = 'reaped'
    end
    if mode ~= 'none' then
      for i = 0, n - 1 do
        local k, e = ARGV[c + 6 * i], ARGV[c + 6 * i + 4]
        local amount, final = tonumber(ARGV[c + 6 * i + 1]), tonumber(ARGV[c + 6 * i + 2])
        local un = tonumber(ARGV[c + 6 * i + 3])
        local dv, ds = final - un, final - un
        if mode == 'full' then
          dv, ds = final, final
        elseif mode == 'open' then
          dv, ds = final - amount, final
        end
        if dv ~= 0 then redis.call('INCRBY', k, dv); redis.call('EXPIREAT', k, e) end
        if ds ~= 0 then redis.call('INCRBY', k .. ':s', ds); redis.call('EXPIREAT', k .. ':s', e) end
        if mode == 'full' and redis.call('ZADD', index, 'NX', e, k) == 1 then
          redis.call('HSET', meta, k, ARGV[c + 6 * i + 5])
        end
      end
    end
  end
end
return 1
"""

# ARGV: prefix, now, most. Closes up to ``most`` leases open past their expiry as unanswered, each once
# (ZREM says who got it), and forgets the index entries of windows that ended. Returns how many.
REAP = """
local P, now = ARGV[1], ARGV[2]
local leases, payloads, index, meta = P .. 'leases', P .. 'lease', P .. 'index', P .. 'meta'
local n = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))) do
  if redis.call('ZREM', leases, id) == 1 then
    n = n + 1
    local payload = redis.call('HGET', payloads, id)
    redis.call('HDEL', payloads, id)
    for line in string.gmatch(payload or '', '[^\\n]+') do
      local k, amount, un, e = string.match(line, '^(.*)\\t(%-?%d+)\\t(%-?%d+)\\t(%d+)$')
      if k then
        local dv = tonumber(un) - tonumber(amount)
        if dv ~= 0 then redis.call('INCRBY', k, dv); redis.call('EXPIREAT', k, e) end
        if tonumber(un) ~= 0 then redis.call('INCRBY', k .. ':s', un); redis.call('EXPIREAT', k .. ':s', e) end
      end
    end
  end
end
local ended = redis.call('ZRANGEBYSCORE', index, '-inf', now, 'LIMIT', 0, 1000)
if #ended > 0 then
  redis.call('HDEL', meta, unpack(ended))
  redis.call('ZREM', index, unpack(ended))
end
return n
"""

# ARGV: prefix, now. Returns: open leases, expired ones, then per live counter: key, meta, value,
# settled, reserved by open leases. One atomic read: the invariant holds at this instant or it does not.
SNAPSHOT = """
local P, now = ARGV[1], ARGV[2]
local leases, payloads, index, meta = P .. 'leases', P .. 'lease', P .. 'index', P .. 'meta'
local open = {}
local all = redis.call('HGETALL', payloads)
for i = 2, #all, 2 do
  for line in string.gmatch(all[i], '[^\\n]+') do
    local k, amount = string.match(line, '^(.*)\\t(%-?%d+)\\t%-?%d+\\t%d+$')
    if k then open[k] = (open[k] or 0) + tonumber(amount) end
  end
end
local out = {redis.call('ZCARD', leases), redis.call('ZCOUNT', leases, '-inf', now)}
for _, k in ipairs(redis.call('ZRANGEBYSCORE', index, now, '+inf')) do
  out[#out + 1] = k
  out[#out + 1] = redis.call('HGET', meta, k) or ''
  out[#out + 1] = tonumber(redis.call('GET', k) or '0')
  out[#out + 1] = tonumber(redis.call('GET', k .. ':s') or '0')
  out[#out + 1] = open[k] or 0
end
return out
"""

# ARGV: prefix, keep_s, marker, bits key, bit offset, number of days, then per day: ledger key, expire_at, number of
# fields, (field, value) pairs. Once per batch id.
RECORD = """
local P = ARGV[1]
if ARGV[3] ~= '' and redis.call('GET', P .. 'marker') ~= ARGV[3] then
  return redis.error_reply('FORGOT: the state store lost its data (its marker is gone)')
end
if redis.call('SETBIT', ARGV[4], tonumber(ARGV[5]), 1) == 1 then return 0 end
redis.call('EXPIRE', ARGV[4], ARGV[2])
local a = 7
for d = 1, tonumber(ARGV[6]) do
  local key, e, n = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  a = a + 3
  for i = 0, n - 1 do redis.call('HINCRBY', key, ARGV[a + 2 * i], ARGV[a + 2 * i + 1]) end
  redis.call('EXPIREAT', key, e)
  a = a + 2 * n
end
return 1
"""
