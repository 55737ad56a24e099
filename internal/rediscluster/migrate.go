package rediscluster

import (
	"context"
	"fmt"
	"net"
)

// migrateBatch is how many keys one MIGRATE call moves.
const migrateBatch = 100

func (c *Cluster) checkMove(slot int, src, dst *Node) error {
	if err := validSlot(slot); err != nil {
		return err
	}
	if err := c.own(src); err != nil {
		return err
	}
	if err := c.own(dst); err != nil {
		return err
	}
	if src == dst {
		return fmt.Errorf("source and destination are the same node %s", src.Addr)
	}
	return nil
}

// BeginMigration marks slot as importing on dst, then as migrating on src,
// in the order the Redis cluster specification prescribes (so a client
// redirected by src with ASK always finds dst ready).
func (c *Cluster) BeginMigration(ctx context.Context, slot int, src, dst *Node) error {
	if err := c.checkMove(slot, src, dst); err != nil {
		return fmt.Errorf("begin migration: %w", err)
	}
	if err := dst.Client().Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", src.ID).Err(); err != nil {
		return fmt.Errorf("begin migration of slot %d: CLUSTER SETSLOT IMPORTING on %s: %w", slot, dst.Addr, err)
	}
	if err := src.Client().Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", dst.ID).Err(); err != nil {
		return fmt.Errorf("begin migration of slot %d: CLUSTER SETSLOT MIGRATING on %s: %w", slot, src.Addr, err)
	}
	c.log.Debug("redis slot migration begun", "slot", slot, "src", src.Addr, "dst", dst.Addr)
	return nil
}

// MigrateKeys moves up to max keys of slot from src to dst with
// CLUSTER GETKEYSINSLOT and MIGRATE ... KEYS (timeout 5000ms, no REPLACE),
// in batches of 100. max <= 0 means all keys. It returns how many keys were
// moved (keys that expired in between are not counted).
func (c *Cluster) MigrateKeys(ctx context.Context, slot int, src, dst *Node, max int) (moved int, err error) {
	if err := c.checkMove(slot, src, dst); err != nil {
		return 0, fmt.Errorf("migrate keys: %w", err)
	}
	host, port, err := net.SplitHostPort(dst.Addr)
	if err != nil {
		return 0, fmt.Errorf("migrate keys: destination address %q: %w", dst.Addr, err)
	}
	for max <= 0 || moved < max {
		if err := ctx.Err(); err != nil {
			return moved, fmt.Errorf("migrate keys of slot %d: %w", slot, err)
		}
		n := migrateBatch
		if max > 0 && max-moved < n {
			n = max - moved
		}
		keys, err := src.Client().ClusterGetKeysInSlot(ctx, slot, n).Result()
		if err != nil {
			return moved, fmt.Errorf("migrate keys of slot %d: CLUSTER GETKEYSINSLOT on %s: %w", slot, src.Addr, err)
		}
		if len(keys) == 0 {
			break
		}
		args := make([]any, 0, 7+len(keys))
		args = append(args, "MIGRATE", host, port, "", 0, migrateTimeout, "KEYS")
		for _, k := range keys {
			args = append(args, k)
		}
		res, err := src.Client().Do(ctx, args...).Text()
		if err != nil {
			return moved, fmt.Errorf("migrate keys of slot %d: MIGRATE %d keys from %s to %s: %w", slot, len(keys), src.Addr, dst.Addr, err)
		}
		if res != "NOKEY" { // NOKEY: all of them expired meanwhile
			moved += len(keys)
		}
	}
	c.log.Debug("redis slot keys migrated", "slot", slot, "src", src.Addr, "dst", dst.Addr, "keys", moved)
	return moved, nil
}

// FinishMigration checks that src holds no keys of slot, assigns slot to dst
// with CLUSTER SETSLOT NODE on dst, then src, then every other alive master,
// and waits until every alive cluster node sees dst as its owner. If ctx has
// no deadline, the wait is limited to 30s.
func (c *Cluster) FinishMigration(ctx context.Context, slot int, src, dst *Node) error {
	if err := c.checkMove(slot, src, dst); err != nil {
		return fmt.Errorf("finish migration: %w", err)
	}
	left, err := src.Client().ClusterCountKeysInSlot(ctx, slot).Result()
	if err != nil {
		return fmt.Errorf("finish migration of slot %d: CLUSTER COUNTKEYSINSLOT on %s: %w", slot, src.Addr, err)
	}
	if left != 0 {
		return fmt.Errorf("finish migration of slot %d: %s still holds %d keys of it", slot, src.Addr, left)
	}
	setNode := func(n *Node) error {
		if err := n.Client().Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dst.ID).Err(); err != nil {
			return fmt.Errorf("finish migration of slot %d: CLUSTER SETSLOT NODE %s on %s: %w", slot, dst.Addr, n.Addr, err)
		}
		return nil
	}
	if err := setNode(dst); err != nil {
		return err
	}
	if err := setNode(src); err != nil {
		return err
	}
	masters, err := c.Masters(ctx)
	if err != nil {
		return fmt.Errorf("finish migration of slot %d: %w", slot, err)
	}
	for _, m := range masters {
		// A master that is down learns the new owner by gossip when it
		// comes back.
		if m == src || m == dst || !m.Alive() {
			continue
		}
		if err := setNode(m); err != nil {
			return err
		}
	}
	err = until(ctx, fmt.Sprintf("every node to see slot %d on %s", slot, dst.Addr), func(ctx context.Context) (bool, string, error) {
		views, why := c.memberViews(ctx, nil)
		if why != "" {
			return false, why, nil
		}
		for _, v := range views {
			if id := slotOwners(v.view)[slot]; id != dst.ID {
				return false, fmt.Sprintf("%s sees slot %d on %q", v.node.Addr, slot, short(id)), nil
			}
		}
		return true, "", nil
	})
	if err != nil {
		return fmt.Errorf("finish migration of slot %d: %w", slot, err)
	}
	c.log.Debug("redis slot moved", "slot", slot, "src", src.Addr, "dst", dst.Addr)
	return nil
}

// MoveSlot moves slot and all its keys from src to dst: BeginMigration,
// MigrateKeys (all keys), FinishMigration.
func (c *Cluster) MoveSlot(ctx context.Context, slot int, src, dst *Node) error {
	if err := c.BeginMigration(ctx, slot, src, dst); err != nil {
		return err
	}
	if _, err := c.MigrateKeys(ctx, slot, src, dst, 0); err != nil {
		return err
	}
	return c.FinishMigration(ctx, slot, src, dst)
}
