#!/usr/bin/env bash
# bench/lib.sh: starting and stopping `slotway demo` for the benchmark
# scripts (bench/run.sh, bench/gnetspike/run.sh), which source it.
#
# The caller sets, before calling anything here:
#   work           a temp dir of its own (demo.out and demo.err go there)
#   slotway_bin    the slotway binary to run
#   READY_TIMEOUT  seconds to wait for the demo
#   KEYSPACE, KEYSPACE_BYTES  rb's -r: KEYSPACE_BYTES/size keys, at most
#                  KEYSPACE, at least 16
#   notes          a file for redis-benchmark's distinct stderr lines
# start_demo sets demo_pid, endpoint_port, stats (host:port of the first
# instance's stats server), master (host:port of the first master),
# master_port and master_pid; stop_demo clears demo_pid.

# shellcheck disable=SC2034,SC2154 # variables set by the caller, or here for it
demo_pid=""
rb_pid=""
node_logs=()      # redis.log of each demo node
node_log_lines=() # its line count when the demo became ready

# stop_demo sends SIGINT (the demo then stops the cluster and removes its
# temp dir), waits up to 30s, and falls back to SIGKILL for the demo and the
# redis-server processes it started.
stop_demo() {
	[[ -n $demo_pid ]] || return 0
	if kill -0 "$demo_pid" 2>/dev/null; then
		local kids i
		kids=$(ps -o pid= --ppid "$demo_pid" 2>/dev/null || true)
		kill -INT "$demo_pid" 2>/dev/null || true
		for ((i = 0; i < 150; i++)); do
			kill -0 "$demo_pid" 2>/dev/null || break
			sleep 0.2
		done
		if kill -0 "$demo_pid" 2>/dev/null; then
			echo "run.sh: demo (pid $demo_pid) did not stop within 30s; killing it" >&2
			kill -KILL "$demo_pid" 2>/dev/null || true
			for i in $kids; do
				kill -KILL "$i" 2>/dev/null || true
			done
		fi
	fi
	wait "$demo_pid" 2>/dev/null || true
	demo_pid=""
}

# stop_bg PID stops a helper the script started in the background (SIGTERM:
# strace detaches, idleconns closes its connections) and reaps it.
stop_bg() {
	[[ -n $1 ]] || return 0
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# snapshot_node_logs remembers where each Redis node's log ends now; the
# node directories are the working directories of the demo's children.
snapshot_node_logs() {
	local k d
	node_logs=()
	node_log_lines=()
	for k in $(ps -o pid= --ppid "$demo_pid" 2>/dev/null || true); do
		d=$(readlink "/proc/$k/cwd" 2>/dev/null) || continue
		[[ -f $d/redis.log ]] || continue
		node_logs+=("$d/redis.log")
		node_log_lines+=("$(wc -l <"$d/redis.log")")
	done
}

# node_events prints what the Redis nodes logged since the snapshot about
# warnings, failure detection and failovers (a loaded machine can make a node
# miss the demo's 2s node timeout).
node_events() {
	local i f
	for i in "${!node_logs[@]}"; do
		f=${node_logs[$i]}
		[[ -f $f ]] || continue
		tail -n +"$((node_log_lines[i] + 1))" "$f" 2>/dev/null |
			grep -E ' # |FAIL|[Ff]ailover|[Ee]lection|Marking node|Connection with .* lost' |
			grep -v 'overcommit' |
			sed "s|^|$(basename "$(dirname "$f")"): |" || true
	done
}

# port_free reports whether nothing accepts connections on 127.0.0.1:$1.
port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# free_pair prints a port p such that p and p+1 look free (the demo's second
# instance uses the next port; the demo itself falls back to any free port
# when one is taken after all). Ports stay below the ephemeral range.
free_pair() {
	local p i
	for ((i = 0; i < 200; i++)); do
		p=$((22000 + RANDOM % 10000))
		if port_free "$p" && port_free $((p + 1)); then
			echo "$p"
			return 0
		fi
	done
	echo "run.sh: found no free port pair" >&2
	return 1
}

# start_demo R starts `slotway demo -replicas R`, waits until it is ready,
# pauses its autoscaler and sets the variables named at the top.
start_demo() {
	local r=$1 listen_port stats_port deadline i endpoint token k
	listen_port=$(free_pair)
	stats_port=$(free_pair)
	echo "== starting slotway demo -replicas $r (listen 127.0.0.1:$listen_port, stats 127.0.0.1:$stats_port${SLOTWAY_BACKEND_CONNS:+, SLOTWAY_BACKEND_CONNS=$SLOTWAY_BACKEND_CONNS}${SLOTWAY_EVENT_LOOPS:+, SLOTWAY_EVENT_LOOPS=$SLOTWAY_EVENT_LOOPS})"
	"$slotway_bin" demo -replicas "$r" -listen "127.0.0.1:$listen_port" -stats "127.0.0.1:$stats_port" \
		>"$work/demo.out" 2>"$work/demo.err" &
	demo_pid=$!

	deadline=$((SECONDS + READY_TIMEOUT))
	until grep -q '^endpoint: ' "$work/demo.out"; do
		if ! kill -0 "$demo_pid" 2>/dev/null; then
			echo "run.sh: the demo exited before it was ready" >&2
			cat "$work/demo.out" >&2
			exit 1
		fi
		if ((SECONDS >= deadline)); then
			echo "run.sh: the demo did not print its endpoint within ${READY_TIMEOUT}s" >&2
			cat "$work/demo.out" >&2
			exit 1
		fi
		sleep 0.2
	done
	# The stats and token lines follow the endpoint line; give them a moment.
	for ((i = 0; i < 25; i++)); do
		grep -q 'Authorization: Bearer' "$work/demo.out" && break
		sleep 0.2
	done

	endpoint=$(sed -n 's/^endpoint: *//p' "$work/demo.out" | head -n 1)
	stats=$(sed -n 's|^stats: *http://\([^/]*\).*|\1|p' "$work/demo.out" | head -n 1)
	master=$(awk '$2 == "master" { print $1; exit }' "$work/demo.out")
	if [[ -z $endpoint || -z $stats || -z $master ]]; then
		echo "run.sh: could not parse the demo output (endpoint '$endpoint', stats '$stats', master '$master'):" >&2
		cat "$work/demo.out" >&2
		exit 1
	fi
	endpoint_port=${endpoint##*:}
	master_port=${master##*:}
	# redis-server shows its address in its process title.
	master_pid=""
	for k in $(ps -o pid= --ppid "$demo_pid" 2>/dev/null || true); do
		if grep -q ":$master_port\b" "/proc/$k/cmdline" 2>/dev/null; then
			master_pid=$k
			break
		fi
	done

	# The demo's autoscaler would scale out under the benchmark's load, and
	# a slot move in the middle of a run stops redis-benchmark --cluster
	# ("could not find node with ID ..."): pause it (group-wide) first.
	token=$(sed -n "s/.*Authorization: Bearer \([^']*\)'.*/\1/p" "$work/demo.out" | head -n 1)
	if [[ -z $token ]] || ! curl -fsS --max-time 10 -X POST -H "Authorization: Bearer $token" \
		"http://$stats/api/v1/scaler/pause" >/dev/null; then
		echo "run.sh: could not pause the demo's autoscaler" >&2
		exit 1
	fi
	echo "autoscaler paused for the benchmark"
	sed -n '/^cluster nodes:/,/^stats:/p' "$work/demo.out"
	snapshot_node_logs
	echo "watching ${#node_logs[@]} Redis node logs for failovers"
}

# awk_stats holds the awk functions the summaries share: add(key, v) keeps a
# value, median(key) is the median of those kept, ratio(a, b) is a/b to two
# places ("n/a" when b is 0). Prefix a program with it.
awk_stats='
		function median(key,   n, i, j, t, a) {
			n = cnt[key]
			for (i = 1; i <= n; i++) a[i] = val[key, i]
			for (i = 2; i <= n; i++) {
				t = a[i]
				for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]
				a[j + 1] = t
			}
			if (n % 2) return a[(n + 1) / 2]
			return (a[n / 2] + a[n / 2 + 1]) / 2
		}
		function add(key, v) { cnt[key]++; val[key, cnt[key]] = v + 0 }
		function ratio(a, b) { return b > 0 ? sprintf("%.2f", a / b) : "n/a" }
'

# rb DEST KEY TARGET PORT REP CLIENTS SIZE PIPELINE N [redis-benchmark args...]
# runs redis-benchmark -t set,get once and appends its rows
# "KEY cmd REP TARGET rps p99" to DEST (/dev/null: print only).
rb() {
	local dest=$1 key=$2 target=$3 port=$4 rep=$5 clients=$6 size=$7 pipeline=$8 n=$9
	shift 9
	local out=$work/rb.out err=$work/rb.err rows=$work/rb.rows keys
	keys=$((KEYSPACE_BYTES / size))
	((keys <= KEYSPACE)) || keys=$KEYSPACE
	((keys >= 16)) || keys=16
	# Run it in the background and wait: bash runs the INT/TERM traps only
	# after a foreground command ends, but interrupts `wait` at once.
	redis-benchmark -h 127.0.0.1 -p "$port" "$@" -t set,get -r "$keys" -d "$size" \
		-c "$clients" -n "$n" -P "$pipeline" --csv >"$out" 2>"$err" &
	rb_pid=$!
	local rc=0
	wait "$rb_pid" || rc=$?
	rb_pid=""
	if ((rc != 0)); then
		echo "run.sh: redis-benchmark ($target, -c $clients -d $size -P $pipeline) failed:" >&2
		cat "$out" "$err" >&2
		return 1
	fi
	# --csv prints a header line and one line per test; in --cluster mode it
	# also prints the cluster layout first. Columns are looked up by name.
	if ! awk -F, -v OFS='\t' -v key="$key" -v rep="$rep" -v target="$target" '
		{ gsub(/"/, ""); gsub(/\r/, "") }
		$1 == "test" { for (i = 1; i <= NF; i++) col[$i] = i; hdr = 1; next }
		hdr && ($1 == "SET" || $1 == "GET") {
			if (!("rps" in col) || !("p99_latency_ms" in col)) { bad = 1; exit }
			print key, tolower($1), rep, target, $col["rps"], $col["p99_latency_ms"]
			found++
		}
		END { if (bad || found != 2) exit 1 }' "$out" >"$rows"; then
		echo "run.sh: unexpected redis-benchmark output ($target, -c $clients -d $size -P $pipeline):" >&2
		cat "$out" "$err" >&2
		return 1
	fi
	cat "$rows" >>"$dest"
	if [[ -s $err ]]; then
		tr '\r' '\n' <"$err" | sed '/^[[:space:]]*$/d; s/^/'"$target"': /' >>"$notes"
	fi
	awk -F'\t' -v rep="$rep" -v label="-c $clients -d $size -P $pipeline" -v target="$target" '
		{ s = s sprintf("  %s %10.0f rps  p99 %8.3f ms", toupper($2), $5, $6) }
		END { printf "  rep %s  %-22s %-8s%s\n", rep, label, target, s }' "$rows"
}
