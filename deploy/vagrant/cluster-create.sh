#!/usr/bin/env bash
# Joins the Redis VMs' instances into one cluster (the Vagrantfile runs it on
# the last Redis VM). Settings from the environment:
#   NODES     host:port of every cluster node, masters first: with
#             "a:7000 b:7000 c:7000 a:7001 b:7001 c:7001" each replica can
#             sit on another VM than its master.
#   REPLICAS  replicas per master. Default 1.
#   SLOTWAY   the binary. Default /vagrant/bin/slotway.
#
# Why wait first: with a provider that brings VMs up in parallel (libvirt),
# the other Redis VMs may still be provisioning. `slotway cluster create` is
# idempotent, so re-provisioning runs it again harmlessly.
set -euo pipefail

NODES=${NODES:?set NODES to the cluster nodes (host:port ...)}
REPLICAS=${REPLICAS:-1}
SLOTWAY=${SLOTWAY:-/vagrant/bin/slotway}

# Up to 5 minutes per node: a VM that is still installing Redis.
for node in $NODES; do
	host=${node%:*}
	port=${node##*:}
	tries=0
	until [ "$(redis-cli -h "$host" -p "$port" ping 2>/dev/null)" = PONG ]; do
		tries=$((tries + 1))
		if [ "$tries" -ge 300 ]; then
			echo "cluster-create: $node does not answer PING" >&2
			exit 1
		fi
		sleep 1
	done
done

# shellcheck disable=SC2086 # NODES is a list of words on purpose
exec "$SLOTWAY" cluster create -replicas "$REPLICAS" $NODES
