#!/usr/bin/env bash
# bench/gnetspike/run.sh: Slotway against the gnet spike (issue 13), both
# measured against talking to the same Redis Cluster directly, in one run.
#
# It builds Slotway (./cmd/slotway) and the spike (this directory, its own
# module), starts `slotway demo -replicas 0` (3 masters) on free loopback
# ports, pauses its autoscaler, starts the spike with the demo's first master
# as its seed, and then runs, REPS times, interleaved, for each phase:
#
#   direct   redis-benchmark --cluster --threads 1 against a master
#   slotway  redis-benchmark against the demo's first Slotway instance
#   gnet     redis-benchmark against the spike
#
# with -t set,get -d 64 -r 100000 --csv. Phases:
#
#   P1     -c 50 -P 1   (N1 requests per command)
#   P16    -c 50 -P 16  (N16)
#   C1000  -c MANY_CLIENTS -P 1 (MANY_N)
#
# It prints, per phase and command, the medians of rps and p99 and the
# ratios slotway/direct and gnet/direct (rps ratio < 1 and p99 ratio > 1
# mean slower than direct).
#
# STRACE=1 adds: syscalls per command of the spike process and of the demo
# process (strace -c -f -p PID) over STRACE_N SETs and STRACE_N GETs at
# -c 50 -P STRACE_P -d 64, each after STRACE_IDLE seconds traced without
# traffic (the background rate). Counts repeat from run to run where
# timings do not. RATIOS=0 skips the timed phases (strace only).
#
# Environment (defaults in brackets):
#   REPS            repetitions [3]
#   N1, N16         requests per command at -P 1 / -P 16 [20000, 200000]
#   MANY_CLIENTS    clients of the C1000 phase [1000]; 0 skips it
#   MANY_N          requests per command in it [20000]
#   RATIOS          1 runs the timed phases [1]
#   STRACE          1 runs the strace phase [0]
#   STRACE_N        requests per command traced [20000]
#   STRACE_P        pipeline depth of the traced run [1]
#   STRACE_IDLE     seconds traced without traffic first [3]
#   GNET_LOOPS      the spike's -loops (0: GOMAXPROCS, as Slotway) [0]
#   GNET_FLUSH      the spike's -flush: pass or traffic [pass]
#   GNET_LOCK       1 passes -lockosthread (gnet.WithLockOSThread) [0]
#   GNET_TAGS       build tags for the spike: gnet's poll_opt (epoll_wait
#                   with a zero timeout as RawSyscall, the callback found
#                   through the epoll data pointer) or empty [poll_opt]
#   READY_TIMEOUT   seconds to wait for the demo [120]
# Slotway's own variables (SLOTWAY_EVENT_LOOPS, SLOTWAY_BACKEND_CONNS) are
# inherited by the demo as in bench/run.sh.
#
# A quick check that the script works (not a measurement):
#   REPS=1 N1=20000 N16=20000 MANY_N=20000 STRACE=1 STRACE_N=2000 bench/gnetspike/run.sh
set -euo pipefail

REPS=${REPS:-3}
N1=${N1:-20000}
N16=${N16:-200000}
MANY_CLIENTS=${MANY_CLIENTS:-1000}
MANY_N=${MANY_N:-20000}
RATIOS=${RATIOS:-1}
STRACE=${STRACE:-0}
STRACE_N=${STRACE_N:-20000}
STRACE_P=${STRACE_P:-1}
STRACE_IDLE=${STRACE_IDLE:-3}
GNET_LOOPS=${GNET_LOOPS:-0}
GNET_FLUSH=${GNET_FLUSH:-pass}
GNET_TAGS=${GNET_TAGS-poll_opt}
GNET_LOCK=${GNET_LOCK:-0}
READY_TIMEOUT=${READY_TIMEOUT:-120}
CLIENTS=50
DATASIZE=64
KEYSPACE=100000
KEYSPACE_BYTES=$((64 << 20))

for v in REPS N1 N16 STRACE_N STRACE_P READY_TIMEOUT; do
	if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
		echo "run.sh: $v must be a positive integer, got '${!v}'" >&2
		exit 2
	fi
done
for v in MANY_CLIENTS MANY_N STRACE_IDLE GNET_LOOPS; do
	if ! [[ ${!v} =~ ^[0-9]+$ ]]; then
		echo "run.sh: $v must be an integer >= 0, got '${!v}'" >&2
		exit 2
	fi
done
for v in RATIOS STRACE GNET_LOCK; do
	if ! [[ ${!v} =~ ^[01]$ ]]; then
		echo "run.sh: $v must be 0 or 1, got '${!v}'" >&2
		exit 2
	fi
done
if [[ $GNET_FLUSH != pass && $GNET_FLUSH != traffic ]]; then
	echo "run.sh: GNET_FLUSH must be pass or traffic, got '$GNET_FLUSH'" >&2
	exit 2
fi
if ((MANY_CLIENTS > 0 && MANY_N == 0)); then
	echo "run.sh: MANY_N must be positive when MANY_CLIENTS is set" >&2
	exit 2
fi
for c in go redis-benchmark curl awk; do
	if ! command -v "$c" >/dev/null; then
		echo "run.sh: $c not found on PATH (redis-benchmark: apt-get install -y redis-tools)" >&2
		exit 2
	fi
done
if ((STRACE)) && ! command -v strace >/dev/null; then
	echo "run.sh: strace not found on PATH (apt-get install -y strace)" >&2
	exit 2
fi

# redis-benchmark's MANY_CLIENTS connections (the demo and the spike
# inherit the raised limit).
need_fds=$((1024 + 2 * MANY_CLIENTS))
if (($(ulimit -Sn) < need_fds)); then
	if ! ulimit -Sn "$need_fds" 2>/dev/null; then
		echo "run.sh: need $need_fds open files, the limit is $(ulimit -Sn) (hard $(ulimit -Hn)); lower MANY_CLIENTS" >&2
		exit 2
	fi
fi

spike_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$spike_dir/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/gnetspike-bench.XXXXXX")
spike_pid=""
strace_pid=""
raw=$work/raw.tsv
notes=$work/notes.txt # redis-benchmark stderr lines
: >"$raw"
: >"$notes"

# stop_demo, stop_bg, start_demo and their helpers.
slotway_bin=$work/slotway
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_bg "$rb_pid"
	if [[ -n $strace_pid ]]; then
		kill -INT "$strace_pid" 2>/dev/null || true
		wait "$strace_pid" 2>/dev/null || true
	fi
	stop_bg "$spike_pid"
	if ((rc != 0)) && [[ -s $work/spike.err ]]; then
		echo "--- last lines of the spike's stderr:" >&2
		tail -n 20 "$work/spike.err" >&2
	fi
	stop_demo
	if ((rc != 0)) && [[ -s $work/demo.err ]]; then
		echo "--- last lines of the demo's stderr:" >&2
		tail -n 20 "$work/demo.err" >&2
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_spike starts the spike with the demo's first master as its seed and
# waits until it answers PING; it sets spike_port.
start_spike() {
	local i
	spike_port=$(free_pair)
	echo "== starting the gnet spike on 127.0.0.1:$spike_port (seed $master, -loops $GNET_LOOPS, -flush $GNET_FLUSH, -lockosthread=$GNET_LOCK, tags '$GNET_TAGS')"
	"$work/gnetspike" -listen "127.0.0.1:$spike_port" -seed "$master" -loops "$GNET_LOOPS" -flush "$GNET_FLUSH" \
		-lockosthread="$( ((GNET_LOCK)) && echo true || echo false)" \
		>"$work/spike.out" 2>"$work/spike.err" &
	spike_pid=$!
	for ((i = 0; i < 150; i++)); do
		grep -q '^ready ' "$work/spike.out" && break
		if ! kill -0 "$spike_pid" 2>/dev/null; then
			echo "run.sh: the spike exited:" >&2
			cat "$work/spike.out" "$work/spike.err" >&2
			exit 1
		fi
		sleep 0.2
	done
	if ! grep -q '^ready ' "$work/spike.out"; then
		echo "run.sh: the spike did not get ready within 30s" >&2
		exit 1
	fi
	sed 's/^/   spike: /' "$work/spike.out"
	# One SET and GET through the spike (dials its backends on first use).
	if command -v redis-cli >/dev/null; then
		local got
		got=$(redis-cli -p "$spike_port" set gnetspike:check 42 && redis-cli -p "$spike_port" get gnetspike:check)
		if [[ $got != $'OK\n42' ]]; then
			echo "run.sh: SET/GET through the spike answered '$got'" >&2
			exit 1
		fi
	fi
}

# run_phase PHASE REP CLIENTS PIPELINE N: direct, then slotway and gnet in
# an order that alternates between repetitions.
run_phase() {
	local phase=$1 rep=$2 clients=$3 pipeline=$4 n=$5
	rb "$raw" "$phase" direct "$master_port" "$rep" "$clients" "$DATASIZE" "$pipeline" "$n" --cluster --threads 1
	if ((rep % 2)); then
		rb "$raw" "$phase" slotway "$endpoint_port" "$rep" "$clients" "$DATASIZE" "$pipeline" "$n"
		rb "$raw" "$phase" gnet "$spike_port" "$rep" "$clients" "$DATASIZE" "$pipeline" "$n"
	else
		rb "$raw" "$phase" gnet "$spike_port" "$rep" "$clients" "$DATASIZE" "$pipeline" "$n"
		rb "$raw" "$phase" slotway "$endpoint_port" "$rep" "$clients" "$DATASIZE" "$pipeline" "$n"
	fi
}

# summarize FMT PHASES prints medians and ratios (FMT text or md).
summarize() {
	awk -F'\t' -v fmt="$1" -v phases="$2" "$awk_stats"'
		{ add($1 SUBSEP $2 SUBSEP $4 SUBSEP "rps", $5); add($1 SUBSEP $2 SUBSEP $4 SUBSEP "p99", $6) }
		END {
			if (fmt == "md") {
				print "| phase | cmd | rps direct | rps slotway | rps gnet | slotway/direct | gnet/direct | p99 direct (ms) | p99 slotway | p99 gnet | p99 slotway/direct | p99 gnet/direct |"
				print "|:---|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
			} else {
				printf "%-6s %-4s %10s %10s %10s %8s %8s %9s %9s %9s %8s %8s\n", "phase", "cmd", "direct", "slotway", "gnet", "slw/dir", "gnet/dir", "p99 dir", "p99 slw", "p99 gnet", "slw/dir", "gnet/dir"
			}
			np = split(phases, ps, " "); split("set get", cs, " ")
			for (i = 1; i <= np; i++) for (j = 1; j <= 2; j++) {
				k = ps[i] SUBSEP cs[j]
				if (!cnt[k SUBSEP "direct" SUBSEP "rps"] || !cnt[k SUBSEP "slotway" SUBSEP "rps"] || !cnt[k SUBSEP "gnet" SUBSEP "rps"]) continue
				rd = median(k SUBSEP "direct" SUBSEP "rps"); rs = median(k SUBSEP "slotway" SUBSEP "rps"); rg = median(k SUBSEP "gnet" SUBSEP "rps")
				ld = median(k SUBSEP "direct" SUBSEP "p99"); ls = median(k SUBSEP "slotway" SUBSEP "p99"); lg = median(k SUBSEP "gnet" SUBSEP "p99")
				if (fmt == "md")
					printf "| %s | %s | %.0f | %.0f | %.0f | %s | %s | %.3f | %.3f | %.3f | %s | %s |\n", ps[i], toupper(cs[j]), rd, rs, rg, ratio(rs, rd), ratio(rg, rd), ld, ls, lg, ratio(ls, ld), ratio(lg, ld)
				else
					printf "%-6s %-4s %10.0f %10.0f %10.0f %8s %8s %9.3f %9.3f %9.3f %8s %8s\n", ps[i], toupper(cs[j]), rd, rs, rg, ratio(rs, rd), ratio(rg, rd), ld, ls, lg, ratio(ls, ld), ratio(lg, ld)
			}
		}' "$raw"
}

# strace_count NAME PID traces PID (strace -c -f) for STRACE_IDLE seconds
# without traffic, then during STRACE_N SETs and GETs to PORT, and prints
# the totals and the top syscalls per command.
strace_count() {
	local name=$1 pid=$2 port=$3 i total idle_total=0 t0 t1 secs idle_secs=0 cmds=$((2 * STRACE_N))
	local pass
	for pass in idle run; do
		if [[ $pass == idle ]] && ((STRACE_IDLE == 0)); then continue; fi
		: >"$work/strace.err"
		strace -f -c -U calls,name -S calls -o "$work/strace-$pass.txt" -p "$pid" 2>"$work/strace.err" &
		strace_pid=$!
		for ((i = 0; i < 100; i++)); do
			grep -q 'attached' "$work/strace.err" && break
			kill -0 "$strace_pid" 2>/dev/null || break
			sleep 0.1
		done
		if ! grep -q 'attached' "$work/strace.err"; then
			kill -INT "$strace_pid" 2>/dev/null || true
			wait "$strace_pid" 2>/dev/null || true
			strace_pid=""
			echo "   $name: strace could not attach (ptrace not permitted?):"
			sed 's/^/   /' "$work/strace.err"
			return 0
		fi
		# -f attaches every thread in turn; let it finish.
		sleep 1
		t0=$EPOCHREALTIME
		if [[ $pass == idle ]]; then
			sleep "$STRACE_IDLE"
		else
			redis-benchmark -h 127.0.0.1 -p "$port" -t set,get -r "$KEYSPACE" -d "$DATASIZE" \
				-c "$CLIENTS" -n "$STRACE_N" -P "$STRACE_P" -q >"$work/rb.out" 2>"$work/rb.err" &
			rb_pid=$!
			wait "$rb_pid" || {
				echo "run.sh: redis-benchmark under strace ($name) failed:" >&2
				cat "$work/rb.out" "$work/rb.err" >&2
				return 1
			}
			rb_pid=""
		fi
		t1=$EPOCHREALTIME
		kill -INT "$strace_pid" 2>/dev/null || true
		wait "$strace_pid" 2>/dev/null || true
		strace_pid=""
		secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
		total=$(awk '$2 == "total" { print $1 }' "$work/strace-$pass.txt")
		if [[ $pass == idle ]]; then
			idle_total=${total:-0}
			idle_secs=$secs
		fi
	done
	awk -v name="$name" -v cmds="$cmds" -v total="$total" -v secs="$secs" -v it="$idle_total" -v is="$idle_secs" '
		BEGIN {
			rate = is > 0 ? it / is : 0
			printf "   %-8s %8d syscalls for %d SET+GET = %.2f per command; background %d in %.1fs idle (~%.0f over the %.1fs run, %.2f per command)\n",
				name, total, cmds, total / cmds, it, is, rate * secs, secs, rate * secs / cmds
		}'
	awk -v cmds="$cmds" '$1 ~ /^[0-9]+$/ && $2 != "total" && n < 8 { printf "            %-16s %9d %8.3f\n", $2, $1, $1 / cmds; n++ }' "$work/strace-run.txt"
}

echo "== building slotway and the spike"
(cd "$root" && go build -o "$work/slotway" ./cmd/slotway)
(cd "$spike_dir" && go build -tags "$GNET_TAGS" -o "$work/gnetspike" .)

start_demo 0
start_spike

phases="P1 P16"
if ((MANY_CLIENTS > 0)); then phases="$phases C$MANY_CLIENTS"; fi
if ((RATIOS)); then
	echo
	many=""
	if ((MANY_CLIENTS > 0)); then many="; C$MANY_CLIENTS: -c $MANY_CLIENTS -P 1 N=$MANY_N"; fi
	echo "== REPS=$REPS; P1: -c $CLIENTS -P 1 N=$N1; P16: -c $CLIENTS -P 16 N=$N16$many; -d $DATASIZE -r $KEYSPACE"
	for ((rep = 1; rep <= REPS; rep++)); do
		run_phase P1 "$rep" "$CLIENTS" 1 "$N1"
		run_phase P16 "$rep" "$CLIENTS" 16 "$N16"
		if ((MANY_CLIENTS > 0)); then
			run_phase "C$MANY_CLIENTS" "$rep" "$MANY_CLIENTS" 1 "$MANY_N"
		fi
	done
	echo
	echo "== medians of $REPS (ratios to direct: rps < 1 and p99 > 1 are slower)"
	summarize text "$phases"
	echo
	summarize md "$phases"
fi

if ((STRACE)); then
	echo
	echo "== syscalls per command: strace -c -f -p PID, $STRACE_N SET + $STRACE_N GET, -c $CLIENTS -P $STRACE_P -d $DATASIZE"
	strace_count gnet "$spike_pid" "$spike_port"
	strace_count slotway "$demo_pid" "$endpoint_port"
	echo "   (slotway: the whole demo process, two instances with HA gossip, stats and scaler; the spike has no background work)"
fi

# The spike prints its request and allocation counts when it stops.
kill -TERM "$spike_pid" 2>/dev/null || true
wait "$spike_pid" 2>/dev/null || true
spike_pid=""
echo
echo "== gnet spike allocations: $(grep '^commands ' "$work/spike.err" || echo 'no report')"

echo
echo "== $(nproc) CPUs, $(uname -sr), $(redis-benchmark --version 2>&1 | head -n 1), $(go version)"
echo "   load average at end: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?'); slotway tree $(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "   REPS=$REPS N1=$N1 N16=$N16 MANY_CLIENTS=$MANY_CLIENTS MANY_N=$MANY_N GNET_LOOPS=$GNET_LOOPS GNET_FLUSH=$GNET_FLUSH GNET_LOCK=$GNET_LOCK GNET_TAGS='$GNET_TAGS'"
