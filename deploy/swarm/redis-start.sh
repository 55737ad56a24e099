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
	# The embedded DNS can lag a freshly created service by a moment.
	ip=""
	tries=0
	while [ -z "$ip" ]; do
		ip=$(getent hosts "$REDIS_ANNOUNCE_SERVICE" | head -n 1 | cut -d ' ' -f 1) || ip=""
		if [ -z "$ip" ]; then
			tries=$((tries + 1))
			if [ "$tries" -ge 30 ]; then
				echo "redis-start: cannot resolve $REDIS_ANNOUNCE_SERVICE to the service VIP" >&2
				exit 1
			fi
			sleep 1
		fi
	done
	set -- "$@" --cluster-announce-ip "$ip"
fi
# Through the image's own entrypoint: it chowns /data to the redis user and
# drops root before running redis-server.
exec docker-entrypoint.sh "$@"
