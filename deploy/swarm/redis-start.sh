#!/bin/sh
# Starts one Redis Cluster node in a Swarm task (stack.yml mounts this
# script as the Swarm config `redis-start`).
#
# Why a script: a cluster node tells the others and the clients one address
# (gossip, CLUSTER SLOTS, MOVED). A task's own IP changes every time Swarm
# reschedules it, while nodes.conf on the volume keeps the node's ID, so the
# other nodes would keep dialing a dead address. The service's virtual IP is
# stable for the service's lifetime and always routed to its current task,
# so redis-1..redis-6 announce that instead (REDIS_ANNOUNCE_SERVICE=redis-N).
# The spare service runs several tasks behind one name, so there is no VIP
# to share: without REDIS_ANNOUNCE_SERVICE a node announces nothing and
# Redis uses the task address its peers see.
set -eu

set -- redis-server /etc/redis/redis.conf
if [ -n "${REDIS_ANNOUNCE_SERVICE:-}" ]; then
	# shellcheck source=SCRIPTDIR/resolve.sh
	. "${SLOTWAY_RESOLVE:-/usr/local/lib/slotway/resolve.sh}"
	ip=$(resolve "$REDIS_ANNOUNCE_SERVICE" "redis-start (the service VIP)")
	set -- "$@" --cluster-announce-ip "$ip"
fi
# Through the image's own entrypoint: it chowns /data to the redis user and
# drops root before running redis-server.
exec docker-entrypoint.sh "$@"
