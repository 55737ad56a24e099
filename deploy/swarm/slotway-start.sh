#!/bin/sh
# Starts Slotway in a Swarm task (stack.yml mounts this script as the Swarm
# config `slotway-start` and uses it as the entrypoint).
#
# Why a script: ha.bind must be this task's own address (memberlist binds to
# it and advertises it to the peers), and Swarm gives a task its address only
# when it starts. Slotway's config has no variables, so slotway-N.yaml
# carries the placeholder ${SLOTWAY_TASK_IP} and this script writes a copy
# with the address filled in. SLOTWAY_TASK_DNS is tasks.<service>, which the
# embedded DNS answers with the address of the service's one task on the
# stack network.
set -eu

src=${SLOTWAY_CONFIG:-/etc/slotway/slotway.yaml}
out=${SLOTWAY_RENDERED_CONFIG:-/tmp/slotway.yaml}
bin=${SLOTWAY_BIN:-/usr/local/bin/slotway}
name=${SLOTWAY_TASK_DNS:?set SLOTWAY_TASK_DNS to tasks.<this service>}

# shellcheck source=SCRIPTDIR/resolve.sh
. "${SLOTWAY_RESOLVE:-/usr/local/lib/slotway/resolve.sh}"
ip=$(resolve "$name" "slotway-start (this task's address)")
case $ip in
*[!0-9a-fA-F.:]*)
	echo "slotway-start: $name resolved to $ip, not an IP address" >&2
	exit 1
	;;
esac
# IPv6 needs brackets in host:port.
case $ip in
*:*) ip="[$ip]" ;;
esac

umask 077
# shellcheck disable=SC2016 # the placeholder is literal text in the config
sed 's/\${SLOTWAY_TASK_IP}/'"$ip"'/g' "$src" >"$out"
exec "$bin" run -config "$out"
