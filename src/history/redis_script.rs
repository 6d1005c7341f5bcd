//! The Lua scripts of the Redis history (see `redis.rs` beside this file) and the parsers of
//! what they publish and keep.

/// KEYS: epoch, then a counter and a list per kept name. ARGV: a fresh epoch, the entry
/// (is_text byte + payload), the message, the channel, then max messages and max age (ms)
/// per kept name.
pub(crate) const APPEND: &str = r"
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local offsets = {}
local n = (#KEYS - 1) / 2
for i = 1, n do
  local ck, lk = KEYS[2 * i], KEYS[2 * i + 1]
  local max, age = tonumber(ARGV[3 + 2 * i]), tonumber(ARGV[4 + 2 * i])
  local o = redis.call('INCR', ck)
  redis.call('RPUSH', lk, o .. ':' .. now .. ':' .. ARGV[2])
  if max > 0 then redis.call('LTRIM', lk, -max, -1) end
  if age > 0 then
    while true do
      local first = redis.call('LINDEX', lk, 0)
      if not first then break end
      local at = tonumber(string.match(first, '^%d+:(%d+):'))
      if at and at < now - age then redis.call('LPOP', lk) else break end
    end
    redis.call('PEXPIRE', lk, age)
  end
  offsets[i] = o
end
redis.call('PUBLISH', ARGV[4], epoch .. '\n' .. table.concat(offsets, ',') .. '\n' .. ARGV[3])
return epoch";

/// KEYS: epoch, counter, list. ARGV: a fresh epoch, max age (ms). Returns the epoch, the
/// last offset and the entries not older than the age bound.
pub(crate) const READ: &str = r"
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local entries = redis.call('LRANGE', KEYS[3], 0, -1)
local age = tonumber(ARGV[2])
local out = {epoch, tostring(last)}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, e in ipairs(entries) do
  local at = tonumber(string.match(e, '^%d+:(%d+):'))
  if age == 0 or (at and at >= now - age) then table.insert(out, e) end
end
return out";

/// A published message: epoch, offsets, the encoded message.
pub(crate) fn split(bytes: &[u8]) -> Option<(&str, Vec<u64>, &[u8])> {
    let mut parts = bytes.splitn(3, |&b| b == b'\n');
    let epoch = std::str::from_utf8(parts.next()?).ok()?;
    let offsets = std::str::from_utf8(parts.next()?).ok()?;
    let offsets = offsets
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect::<std::result::Result<Vec<u64>, _>>()
        .ok()?;
    Some((epoch, offsets, parts.next()?))
}

/// A list entry: `offset:ms:` then the is_text byte and the payload.
pub(crate) fn entry(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut parts = bytes.splitn(3, |&b| b == b':');
    let offset = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    parts.next()?;
    Some((offset, parts.next()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_and_kept_shapes() {
        let (epoch, offsets, rest) = split(b"e1\n3,4\nbody\nmore").unwrap();
        assert_eq!(
            (epoch, offsets, rest),
            ("e1", vec![3, 4], &b"body\nmore"[..])
        );
        assert!(split(b"e1\nx\nbody").is_none());
        assert_eq!(entry(b"12:1700:\x01a:b"), Some((12, &b"\x01a:b"[..])));
        assert!(entry(b"x:1:").is_none());
    }
}
