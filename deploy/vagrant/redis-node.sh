#!/usr/bin/env bash
# Provisions one Redis VM of the Vagrant setup (../../Vagrantfile): Redis
# from Debian's redis-server package, one config and one systemd unit per
# instance. Each VM runs 7000 and 7001 (cluster masters/replicas, joined by
# cluster-create.sh) and 7002 (a spare for the autoscaler's pool).
#
# Settings come from the environment, so the Vagrantfile and the tests call
# the same script:
#   NODE_IP     the address instances bind and announce (the VM's private
#               network address). Default 127.0.0.1.
#   PORTS       instance ports. Default "7000 7001 7002".
#   MAXMEMORY   per instance. Default 256mb: the autoscaler's memory signal
#               compares used_memory with maxmemory.
#   ROOT        prefix of every path written. Default empty (the real /).
#   NO_SYSTEMD  1: install nothing, change no owner, start redis-server
#               processes directly (daemonized, with pidfiles under
#               $ROOT/run/redis-PORT/) instead of systemd units. Needs ROOT:
#               this is how a test runs the script under a temp dir.
#
# Idempotent: a config is rewritten and its instance restarted only when the
# rendered config changed.
set -euo pipefail

NODE_IP=${NODE_IP:-127.0.0.1}
PORTS=${PORTS:-7000 7001 7002}
MAXMEMORY=${MAXMEMORY:-256mb}
ROOT=${ROOT:-}
NO_SYSTEMD=${NO_SYSTEMD:-0}

die() { echo "redis-node: $*" >&2; exit 1; }

# A test must never write under the real / and a VM must never keep its
# files under a prefix systemd knows nothing about.
if [ "$NO_SYSTEMD" = 1 ]; then
	[ -n "$ROOT" ] || die "NO_SYSTEMD=1 needs ROOT (a scratch directory)"
else
	[ -z "$ROOT" ] || die "ROOT is for NO_SYSTEMD=1 only: Debian's redis-server@.service reads /etc/redis"
fi
for port in $PORTS; do
	case $port in '' | *[!0-9]*) die "PORTS: not a port number: $port" ;; esac
done

if [ "$NO_SYSTEMD" != 1 ]; then
	if ! command -v redis-server >/dev/null; then
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
	fi
	# The package's default instance (6379) is not part of the cluster.
	systemctl disable --now redis-server.service >/dev/null 2>&1 || true
	# Redis forks for BGSAVE/AOF rewrites; without overcommit a busy node's
	# fork can fail and persistence stops (Redis warns about it at start).
	echo 'vm.overcommit_memory = 1' >/etc/sysctl.d/60-redis.conf
	sysctl -q -p /etc/sysctl.d/60-redis.conf
fi

# bind: the private address for the cluster and the proxies, plus loopback
# for redis-cli on the VM (once, if they are the same).
bind="$NODE_IP"
[ "$NODE_IP" = 127.0.0.1 ] || bind="$NODE_IP 127.0.0.1"

# render PORT: the instance's config on stdout. Paths follow Debian's
# redis-server@.service, whose sandbox lets it write only /var/lib/redis,
# /var/log/redis, /run/redis-PORT (and /etc/redis).
render() {
	local port=$1
	cat <<CONF
# Written by deploy/vagrant/redis-node.sh; edits are overwritten on the next
# provisioning.
port $port
bind $bind
# No password: this is a demo on a host-only network. Set requirepass and
# masterauth (and proxy.cluster.password in Slotway) anywhere else.
protected-mode no
# Announce the private address: a VM also has a NAT address (the same on
# every VM) that other nodes must never be told about.
cluster-announce-ip $NODE_IP
cluster-enabled yes
cluster-config-file nodes-$port.conf
# 5 s: a replica takes over about this long after its master stops
# answering (the default 15 s keeps the slots down longer).
cluster-node-timeout 5000
dir "$ROOT/var/lib/redis/$port"
logfile "$ROOT/var/log/redis/redis-server-$port.log"
pidfile "$ROOT/run/redis-$port/redis-server.pid"
appendonly yes
maxmemory $MAXMEMORY
# Refuse writes when full rather than evict: a cluster is not a cache here.
maxmemory-policy noeviction
CONF
}

for port in $PORTS; do
	conf="$ROOT/etc/redis/redis-$port.conf"
	mkdir -p "$ROOT/etc/redis" "$ROOT/var/lib/redis/$port" "$ROOT/var/log/redis" "$ROOT/run/redis-$port"
	new=$(mktemp)
	render "$port" >"$new"
	changed=0
	if ! cmp -s "$new" "$conf"; then
		install -m 0640 "$new" "$conf"
		changed=1
	fi
	rm -f "$new"

	if [ "$NO_SYSTEMD" = 1 ]; then
		pidfile="$ROOT/run/redis-$port/redis-server.pid"
		if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
			[ "$changed" = 1 ] || continue
			# Restart on a changed config, as systemd mode does.
			pid=$(cat "$pidfile")
			kill "$pid"
			while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
		fi
		# daemonize: the script returns once the instances run; redis-server
		# writes its pidfile, which is how the caller stops them.
		redis-server "$conf" --daemonize yes
		continue
	fi

	chown redis:redis "$conf" "$ROOT/var/lib/redis/$port"
	chmod 0750 "$ROOT/var/lib/redis/$port"
	systemctl enable --quiet "redis-server@$port.service"
	if [ "$changed" = 1 ]; then
		systemctl restart "redis-server@$port.service"
	else
		systemctl start "redis-server@$port.service"
	fi
done
