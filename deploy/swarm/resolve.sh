#!/bin/sh
# Sourced by redis-start.sh and slotway-start.sh (stack.yml mounts it as
# the Swarm config `resolve` in both images).

# resolve NAME WHO: print NAME's first address. The embedded DNS can lag a
# freshly created service or task by a moment, so it retries for 30 s, then
# exits with WHO in the message.
resolve() {
	_ip=""
	_tries=0
	while [ -z "$_ip" ]; do
		_ip=$(getent hosts "$1" | head -n 1 | cut -d ' ' -f 1) || _ip=""
		if [ -z "$_ip" ]; then
			_tries=$((_tries + 1))
			if [ "$_tries" -ge 30 ]; then
				echo "$2: cannot resolve $1" >&2
				exit 1
			fi
			sleep 1
		fi
	done
	echo "$_ip"
}
