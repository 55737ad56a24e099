package bootstrap

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/clusternodes"
	"github.com/slotway/slotway/internal/poll"
	"github.com/slotway/slotway/internal/redisinfo"
)

// form runs the formation in redis-cli's order: slots on the masters,
// distinct config epochs (so the nodes never have to settle an epoch
// collision, which would delay the first failover), MEET, then REPLICATE
// once every node knows its master.
func (b *builder) form(ctx context.Context, plan Plan, first clusternodes.NodeInfo) error {
	b.say("assigning slots")
	for _, m := range plan.Masters {
		if err := addSlots(ctx, b.clients[m.Addr], m.Slots); err != nil {
			return fmt.Errorf("assign slots %d-%d to %s: %w", m.Slots.Start, m.Slots.End, m.Addr, err)
		}
	}
	b.say("setting config epochs")
	for i, a := range b.addrs {
		if err := b.clients[a].Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
			return fmt.Errorf("CLUSTER SET-CONFIG-EPOCH %d on %s: %w", i+1, a, err)
		}
	}
	meet, err := meetArgs(ctx, b.addrs[0], first.BusPort)
	if err != nil {
		return err
	}
	b.say("meeting %d nodes with %s", len(b.addrs)-1, b.addrs[0])
	for _, a := range b.addrs[1:] {
		if err := b.clients[a].Do(ctx, meet...).Err(); err != nil {
			return fmt.Errorf("%s on %s: %w", strings.Join(toStrings(meet), " "), a, err)
		}
	}
	if err := b.wait(ctx, "every node to know every other", b.checkMet); err != nil {
		return err
	}
	b.say("attaching replicas")
	for _, m := range plan.Masters {
		for _, r := range m.Replicas {
			if err := b.clients[r].ClusterReplicate(ctx, b.ids[m.Addr]).Err(); err != nil {
				return fmt.Errorf("CLUSTER REPLICATE %s (%s) on %s: %w", b.ids[m.Addr], m.Addr, r, err)
			}
		}
	}
	want := map[string]string{} // node id -> master id, "" for masters
	for _, m := range plan.Masters {
		want[b.ids[m.Addr]] = ""
		for _, r := range m.Replicas {
			want[b.ids[r]] = b.ids[m.Addr]
		}
	}
	return b.wait(ctx, "cluster_state:ok on every node and every replica in sync", func(ctx context.Context) (bool, string, error) {
		return b.checkFormed(ctx, want)
	})
}

// addSlots uses ADDSLOTSRANGE (Redis 7) and falls back to ADDSLOTS, which
// older servers know.
func addSlots(ctx context.Context, c *redis.Client, r clusternodes.SlotRange) error {
	err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", r.Start, r.End).Err()
	if err == nil || !isUnknownCommand(err) {
		return err
	}
	args := make([]any, 0, 2+r.Len())
	args = append(args, "CLUSTER", "ADDSLOTS")
	for s := r.Start; s <= r.End; s++ {
		args = append(args, s)
	}
	return c.Do(ctx, args...).Err()
}

func isUnknownCommand(err error) bool {
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "unknown subcommand") || strings.Contains(msg, "unknown command")
}

// meetArgs is CLUSTER MEET for addr. MEET wants an IP, so a host name is
// resolved here, from this machine: where the nodes see each other under
// other addresses (NAT, containers), give IPs. The bus port goes along in
// case it is not the default port+10000.
func meetArgs(ctx context.Context, addr string, busPort int) ([]any, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("node %q: %w", addr, err)
	}
	ip := host
	if net.ParseIP(host) == nil {
		ips, err := net.DefaultResolver.LookupIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("resolve %s for CLUSTER MEET: %w", host, err)
		}
		if len(ips) == 0 {
			return nil, fmt.Errorf("resolve %s for CLUSTER MEET: no address", host)
		}
		ip = ips[0].String()
		for _, a := range ips {
			if a.To4() != nil { // IPv4 first: nodes bind it more often than IPv6
				ip = a.String()
				break
			}
		}
	}
	args := []any{"CLUSTER", "MEET", ip, port}
	if busPort > 0 {
		args = append(args, strconv.Itoa(busPort))
	}
	return args, nil
}

func toStrings(args []any) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = fmt.Sprint(a)
	}
	return out
}

// wait polls check until it is done or ctx ends, saying what it waits
// for and, every stillWaitingEvery, what is still missing.
func (b *builder) wait(ctx context.Context, what string, check poll.Check) error {
	b.say("waiting for %s", what)
	return poll.Until(ctx, what, poll.Options{Every: pollInterval, ProgressEvery: stillWaitingEvery,
		Progress: func(why string) { b.say("  still waiting: %s", why) }}, check)
}

// checkMet: every node lists every node, none of them still in handshake.
func (b *builder) checkMet(ctx context.Context) (bool, string, error) {
	for _, a := range b.addrs {
		view, _, err := clusterView(ctx, b.clients[a])
		if err != nil {
			return false, a + ": " + err.Error(), nil
		}
		if len(view) != len(b.addrs) {
			return false, fmt.Sprintf("%s knows %d of %d nodes", a, len(view), len(b.addrs)), nil
		}
		for _, e := range view {
			if e.Has("handshake") || e.Has("noaddr") || !e.Connected {
				return false, fmt.Sprintf("%s sees %s as %s, connected=%v", a, e.Addr, strings.Join(e.Flags, ","), e.Connected), nil
			}
		}
	}
	return true, "", nil
}

// checkFormed: every node sees the planned roles and is cluster_state:ok,
// and every replica's link to its master is up.
func (b *builder) checkFormed(ctx context.Context, want map[string]string) (bool, string, error) {
	for _, a := range b.addrs {
		c := b.clients[a]
		view, _, err := clusterView(ctx, c)
		if err != nil {
			return false, a + ": " + err.Error(), nil
		}
		for _, e := range view {
			master, ok := want[e.ID]
			switch {
			case !ok:
				return false, fmt.Sprintf("%s lists node %s (%s), which is none of the given nodes", a, e.ID, e.Addr), nil
			case e.Has("fail") || e.Has("fail?"):
				return false, fmt.Sprintf("%s sees %s as %s", a, e.Addr, strings.Join(e.Flags, ",")), nil
			case master == "" && !e.IsMaster():
				return false, fmt.Sprintf("%s does not see %s as a master", a, e.Addr), nil
			case master != "" && (!e.IsReplica() || e.MasterID != master):
				return false, fmt.Sprintf("%s does not see %s as a replica of %s yet", a, e.Addr, master), nil
			}
		}
		ci, err := c.ClusterInfo(ctx).Result()
		if err != nil {
			return false, a + ": CLUSTER INFO: " + err.Error(), nil
		}
		if st := redisinfo.Field(ci, "cluster_state"); st != "ok" {
			return false, a + ": cluster_state:" + st, nil
		}
		if want[b.ids[a]] == "" {
			continue
		}
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return false, a + ": INFO replication: " + err.Error(), nil
		}
		if st := redisinfo.Field(info, "master_link_status"); st != "up" {
			return false, a + ": master_link_status:" + st, nil
		}
	}
	return true, "", nil
}
