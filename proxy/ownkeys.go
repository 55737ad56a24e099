package proxy

// Slotway's own keys (package ownkeys: the event stream, the scaling lease
// with its term, the autoscaler's pause switch and state) live in the
// cluster, in one slot, but are not the clients'. Through the proxy:
//   - a command that names one (read or write) is refused;
//   - KEYS and SCAN leave them out, DBSIZE and INFO keyspace do not count
//     them, RANDOMKEY never returns one;
//   - FLUSHALL and FLUSHDB keep them: on each master a script saves them,
//     flushes and restores them in one atomic step.

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/ownkeys"
)

// ownSlot is the slot of every own key.
const ownSlot = ownkeys.Slot

// ownKey returns the first key of args reserved for Slotway, or nil.
func (ci *cmdInfo) ownKey(args [][]byte) []byte {
	var found []byte
	ci.eachKey(args, func(k []byte) bool {
		if ownkeys.Is(k) {
			found = k
			return false
		}
		return true
	})
	return found
}

// namesOwnKey is the data path's check: only a command with a key in
// ownSlot (or with keys in several slots) can name an own key, so the
// others pay one integer comparison.
func (ci *cmdInfo) namesOwnKey(args [][]byte, slot int, cross bool) []byte {
	if slot != ownSlot && !cross {
		return nil
	}
	return ci.ownKey(args)
}

func reservedKeyMsg(key []byte) string {
	return "ERR slotway: key '" + printable(key) + "' is reserved for Slotway"
}

// ownKeyArgs are the own keys as command arguments (DBSIZE's EXISTS).
var ownKeyArgs = func() [][]byte {
	out := make([][]byte, len(ownkeys.All))
	for i, k := range ownkeys.All {
		out[i] = []byte(k)
	}
	return out
}()

// ownMarker is in the RESP of every own key: replies without it need no
// filtering.
var ownMarker = []byte(ownkeys.Events)

// bulkBody is the payload of a RESP bulk string, or nil.
func bulkBody(x []byte) []byte {
	line, next, ok := readLine(x, 1)
	if !ok || x[0] != '$' {
		return nil
	}
	n, ok := parseLen(line)
	if !ok || next+int(n)+2 > len(x) {
		return nil
	}
	return x[next : next+int(n)]
}

// dropOwn removes own keys from elems (bulk strings, in place).
func dropOwn(elems [][]byte) [][]byte {
	out := elems[:0]
	for _, e := range elems {
		if !ownkeys.Is(bulkBody(e)) {
			out = append(out, e)
		}
	}
	return out
}

// filterOwnArray appends the array of keys arr to dst without own keys.
func filterOwnArray(dst, arr []byte) []byte {
	if !bytes.Contains(arr, ownMarker) {
		return append(dst, arr...)
	}
	elems, ok := arrayElems(arr)
	if !ok {
		return append(dst, arr...)
	}
	elems = dropOwn(elems)
	dst = appendHeader(dst, arr[0], int64(len(elems)))
	for _, e := range elems {
		dst = append(dst, e...)
	}
	return dst
}

// luaOwn is a Lua function telling whether a key is Slotway's (as
// ownkeys.Is) and the list of own keys.
var luaOwn = "local function own(k) return k == '" + ownkeys.Events + "' or string.sub(k, 1, " +
	strconv.Itoa(len(ownkeys.Events)+2) + ") == '{" + ownkeys.Events + "}' end\n" +
	"local ownkeys = {'" + strings.Join(ownkeys.All, "', '") + "'}\n"

// randomKeyScript is RANDOMKEY that never answers an own key: it asks
// again (an own key is at most a few of the keys), and when that keeps
// failing (a master holding almost only Slotway's keys), it scans for one
// that is not. Nil only when the master holds no other key.
var randomKeyScript = luaOwn + `
for i = 1, 64 do
  local k = redis.call('RANDOMKEY')
  if not k or not own(k) then return k end
end
local cur = '0'
repeat
  local r = redis.call('SCAN', cur, 'COUNT', 100)
  cur = r[1]
  for _, k in ipairs(r[2]) do
    if not own(k) then return k end
  end
until cur == '0'
return false
`

// flushScript runs FLUSHALL or FLUSHDB (ARGV: the client's command) and
// keeps the own keys: it saves them (DUMP, PTTL), flushes and restores
// them, all in one script, so no write of the lease can fall between the
// save and the restore and be undone. A master that holds no key of their
// slot only flushes (it touches no key, so it logs no cluster error).
//
// While the slot migrates, the parts are sent after ASKING, so the
// importing master reads and restores the keys it already has. The master
// the slot leaves could not restore them (a write of a missing key there
// is redirected), so it flushes nothing and answers TRYAGAIN, which the
// proxy retries on that master until proxy.retry_timeout. It is told by a
// probe of a reserved key that never exists: only there is it refused as
// "not local". Any other refusal (the cluster is down) fails the command
// on that master before anything is flushed.
var flushScript = luaOwn + `
local saved = {}
if redis.call('CLUSTER', 'COUNTKEYSINSLOT', ` + strconv.Itoa(ownSlot) + `) > 0 then
  local probe = redis.pcall('EXISTS', '{` + ownkeys.Events + `}:probe')
  if type(probe) == 'table' and probe.err then
    if string.find(probe.err, 'non local key', 1, true) then
      return redis.error_reply('TRYAGAIN slot ` + strconv.Itoa(ownSlot) + ` (Slotway own keys) is migrating; flushing this master waits for it')
    end
    return probe
  end
  for _, k in ipairs(ownkeys) do
    local d = redis.call('DUMP', k)
    if d then
      local t = redis.call('PTTL', k)
      if t ~= 0 and t ~= -2 then saved[#saved + 1] = {k, d, math.max(t, 0)} end
    end
  end
end
local r = redis.pcall(unpack(ARGV))
if type(r) == 'table' and r.err then return r end
for _, s in ipairs(saved) do
  redis.call('RESTORE', s[1], s[3], s[2], 'REPLACE')
end
return r
`

// ownCount counts the own keys on the master of their slot, and those
// with a TTL (the health check, for INFO keyspace).
var ownCount = redis.NewScript(`
local n, e = 0, 0
for _, k in ipairs(KEYS) do
  local t = redis.call('PTTL', k)
  if t ~= -2 then
    n = n + 1
    if t >= 0 then e = e + 1 end
  end
end
return {n, e}
`)

var (
	evalCmd      = []byte("EVAL")
	existsCmd    = []byte("EXISTS")
	zeroKeys     = []byte("0")
	randomKeyRaw = appendCommandName(nil, evalCmd, [][]byte{[]byte(randomKeyScript), zeroKeys})
)

// ownFanoutRaw is what a fan-out part sends instead of the client's
// command, or nil to send the command as it is.
func ownFanoutRaw(dst []byte, ci *cmdInfo, args [][]byte) []byte {
	switch ci.name {
	case "randomkey":
		return append(dst[:0], randomKeyRaw...)
	case "flushall", "flushdb":
		out := appendHeader(dst[:0], '*', int64(len(args)+3))
		out = appendBulks(out, evalCmd, []byte(flushScript), zeroKeys)
		return appendBulks(out, args...)
	}
	return nil
}
