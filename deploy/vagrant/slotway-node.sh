#!/usr/bin/env bash
# Provisions one Slotway VM of the Vagrant setup (../../Vagrantfile): the
# binary, the slotway system user, the config, an admin token and the
# systemd unit from deploy/systemd. The instance holds the VIP in netlink
# mode on the interface that carries NODE_IP.
#
# Settings come from the environment:
#   NAME           ha.name, unique in the group (slotway-1).
#   NODE_IP        this VM's private address: ha.bind and stats.
#   PEERS          the other members' ha.bind addresses (host:port ...).
#   PRIORITY       ha.priority. Default 100.
#   VIP            the floating address with prefix (192.168.56.100/24).
#   VIP_INTERFACE  where the VIP goes. Default: the interface with NODE_IP.
#   SEEDS          cluster nodes (host:port ...).
#   SPARES         empty cluster-enabled nodes for the autoscaler's pool.
#   BIN            the binary to install. Default /vagrant/bin/slotway.
#   DEPLOY         this repository's deploy/ folder. Default /vagrant/deploy
#                  (Vagrant uploads the script itself to /tmp, so it cannot
#                  find its neighbours from $0).
#   ROOT           prefix of every path written. Default empty (the real /).
#   NO_SYSTEMD     1: write the files only; no user, no chown, no systemctl.
#                  Needs ROOT: this is how a test runs the script.
set -euo pipefail

NAME=${NAME:?set NAME (ha.name)}
NODE_IP=${NODE_IP:?set NODE_IP (the private address of this VM)}
PEERS=${PEERS:?set PEERS (host:port of the other members)}
PRIORITY=${PRIORITY:-100}
VIP=${VIP:?set VIP (address/prefix)}
SEEDS=${SEEDS:?set SEEDS (host:port of cluster nodes)}
SPARES=${SPARES:-}
BIN=${BIN:-/vagrant/bin/slotway}
DEPLOY=${DEPLOY:-/vagrant/deploy}
ROOT=${ROOT:-}
NO_SYSTEMD=${NO_SYSTEMD:-0}

die() { echo "slotway-node: $*" >&2; exit 1; }

if [ "$NO_SYSTEMD" = 1 ]; then
	[ -n "$ROOT" ] || die "NO_SYSTEMD=1 needs ROOT (a scratch directory)"
else
	[ -z "$ROOT" ] || die "ROOT is for NO_SYSTEMD=1 only: the unit reads /etc/slotway"
fi
[ -x "$BIN" ] || die "$BIN is missing: run 'CGO_ENABLED=0 GOOS=linux GOARCH=amd64 make build' on the host, then 'vagrant rsync'"

# The interface that carries NODE_IP: the host-only network's, whatever the
# box names it (eth1, enp0s8, ...). awk reads to the end (no early exit):
# under pipefail, ip dying of SIGPIPE would fail the whole script.
VIP_INTERFACE=${VIP_INTERFACE:-$(ip -o -4 addr show | awk -v ip="$NODE_IP" '{split($4, a, "/")} a[1] == ip && !found {print $2; found = 1}')}
[ -n "$VIP_INTERFACE" ] || die "no interface has $NODE_IP; set VIP_INTERFACE"

# yamllist "a b c": a YAML flow list of quoted strings.
yamllist() {
	local out="" w
	for w in $1; do out="$out${out:+, }\"$w\""; done
	printf '[%s]' "$out"
}

# install_if_changed SRC DST MODE: installs only a changed file, and
# remembers that something changed (the service is restarted then).
changed=0
install_if_changed() {
	if ! cmp -s "$1" "$2"; then
		install -D -m "$3" "$1" "$2"
		changed=1
	fi
}

install_if_changed "$BIN" "$ROOT/usr/local/bin/slotway" 0755
install_if_changed "$DEPLOY/systemd/slotway.sysusers" "$ROOT/etc/sysusers.d/slotway.conf" 0644
install_if_changed "$DEPLOY/systemd/slotway.service" "$ROOT/etc/systemd/system/slotway.service" 0644
if [ "$NO_SYSTEMD" != 1 ]; then
	systemd-sysusers
fi

mkdir -p "$ROOT/etc/slotway"
# The admin API token (handover, `slotway cluster ...`): made once, kept
# across provisioning so scripts that read it keep working.
token="$ROOT/etc/slotway/admin-token"
if [ ! -s "$token" ]; then
	(umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$token")
fi

new=$(mktemp)
cat >"$new" <<CONF
# Written by deploy/vagrant/slotway-node.sh; edits are overwritten on the
# next provisioning. All keys: deploy/examples/slotway.yaml.
proxy:
  # All addresses: the VIP is added to $VIP_INTERFACE only while this
  # instance holds it, and a listener bound to it would fail before that.
  # 6379, so clients of the VIP use Redis's own port.
  listen: 0.0.0.0:6379
  cluster:
    seeds: $(yamllist "$SEEDS")
stats:
  # All addresses too, so the page is also at the VIP; the other members
  # are told $NODE_IP:8100 (a wildcard is published with ha.bind's host).
  listen: 0.0.0.0:8100
  admin_token_file: /etc/slotway/admin-token
ha:
  name: $NAME
  bind: $NODE_IP:7946
  peers: $(yamllist "$PEERS")
  priority: $PRIORITY
  vip:
    mode: netlink
    address: $VIP
    interface: $VIP_INTERFACE
scaler:
  # Scale by hand (slotway cluster -config /etc/slotway/slotway.yaml scale 4)
  # or set enabled: true to let the leader decide from the metrics.
  enabled: false
  provider:
    kind: pool
    pool: $(yamllist "$SPARES")
CONF
install_if_changed "$new" "$ROOT/etc/slotway/slotway.yaml" 0640
rm -f "$new"

if [ "$NO_SYSTEMD" = 1 ]; then
	exit 0
fi

# The config and token hold the cluster password (if any) and the admin
# token: readable by the service's group, not by everyone.
chown root:slotway "$ROOT/etc/slotway" "$ROOT/etc/slotway/slotway.yaml" "$token"
chmod 0750 "$ROOT/etc/slotway"
chmod 0640 "$ROOT/etc/slotway/slotway.yaml" "$token"
systemctl daemon-reload
systemctl enable --quiet slotway.service
# A restart on the holder hands the VIP to the peer first.
if [ "$changed" = 1 ]; then
	systemctl restart slotway.service
else
	systemctl start slotway.service
fi
