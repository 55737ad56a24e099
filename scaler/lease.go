package scaler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/hashslot"
	"github.com/slotway/slotway/internal/ownkeys"
)

// Slotway's own keys share one slot (the hash tag of EventsKey), which the
// planner moves last. Package ownkeys names them for the proxy too, which
// hides them from clients.
const (
	EventsKey = ownkeys.Events
	leaseKey  = ownkeys.Lease
	intentKey = ownkeys.Intent
)

// ErrFenced: another leader holds the lease with a newer (or equal, live)
// term; this instance must stop scaling.
var ErrFenced = errors.New("fenced: another leader holds the scaling lease")

// leaseScript takes or renews the lease when our term is newer than the
// stored one, or equal and ours, or the stored lease expired and our term
// is not older. The stored term outlives expiry, so a deposed leader with
// an old term can never take the lease back.
var leaseScript = redis.NewScript(`
local t = tonumber(redis.call('HGET', KEYS[1], 'term') or '0')
local h = redis.call('HGET', KEYS[1], 'holder') or ''
local exp = tonumber(redis.call('HGET', KEYS[1], 'expires') or '0')
local now = redis.call('TIME')
local nowms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local term = tonumber(ARGV[1])
local ok = term > t or (term == t and (h == ARGV[2] or exp < nowms))
if not ok then return {0, tostring(t), h} end
redis.call('HSET', KEYS[1], 'term', ARGV[1], 'holder', ARGV[2], 'expires', tostring(nowms + tonumber(ARGV[3])))
if #ARGV > 3 then
  redis.call('HSET', KEYS[2], 'slot', ARGV[4], 'source', ARGV[5], 'target', ARGV[6], 'term', ARGV[1], 'step', ARGV[7], 'at', tostring(nowms))
end
return {1, ARGV[1], ARGV[2]}
`)

// TermKeeper keeps the lease's highest term outside the cluster (the HA
// group's member metadata, which *ha.Group implements): the lease's key is
// lost when someone flushes its node directly, and with it the term that
// fences a deposed leader. Both methods are called from the scaler's
// goroutines and must not block.
type TermKeeper interface {
	// LeaseTerm is the highest lease term the group has seen.
	LeaseTerm() uint64
	// NoteLeaseTerm records a term this instance holds the lease with.
	NoteLeaseTerm(term uint64)
}

// Lease is the term-stamped scaling lease kept in the cluster.
type Lease struct {
	rc     redis.UniversalClient
	holder string
	ttl    time.Duration
	term   func() (bool, uint64) // this instance's leadership and term
	terms  TermKeeper            // nil: the cluster's key is the only record
}

// Renew takes or renews the lease for the current term; ErrFenced when
// this instance is not the leader or another holds a newer term.
func (l *Lease) Renew(ctx context.Context) (uint64, error) { return l.renew(ctx, nil) }

// renew renews the lease and, when in is set, records the intent in the
// same step (one round trip per fenced step).
func (l *Lease) renew(ctx context.Context, in *Intent) (uint64, error) {
	leader, term := l.term()
	if !leader {
		return term, fmt.Errorf("%w: this instance is not the leader", ErrFenced)
	}
	if l.terms != nil {
		if seen := l.terms.LeaseTerm(); term < seen {
			return term, fmt.Errorf("%w (the group has seen term %d; ours %d)", ErrFenced, seen, term)
		}
	}
	args := []any{term, l.holder, l.ttl.Milliseconds()}
	if in != nil {
		args = append(args, in.Slot, in.Source, in.Target, in.Step)
	}
	res, err := leaseScript.Run(ctx, l.rc, []string{leaseKey, intentKey}, args...).Slice()
	if err != nil {
		return term, fmt.Errorf("renew scaling lease: %w", err)
	}
	if len(res) == 3 && res[0] == int64(1) {
		if l.terms != nil {
			l.terms.NoteLeaseTerm(term)
		}
		return term, nil
	}
	return term, fmt.Errorf("%w (term %v, holder %v; ours %d)", ErrFenced, res[1], res[2], term)
}

// Intent is the slot move in progress, stored next to the lease so a new
// leader and the stats page can see it.
type Intent struct {
	Slot           int
	Source, Target string
	Term           uint64
	Step           string
}

func (l *Lease) clearIntent(ctx context.Context) error {
	return l.rc.Del(ctx, intentKey).Err()
}

// Slot is the hash slot of key.
func Slot(key string) int { return hashslot.Of([]byte(key)) }
