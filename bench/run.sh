#!/usr/bin/env bash
# bench/run.sh: what Slotway costs compared with talking to the same Redis
# Cluster directly, measured in one run on one machine over loopback.
#
# It builds bin/slotway, and for each setup in REPLICAS starts `slotway demo
# -replicas R` (3 masters with R replicas each, two Slotway instances in one
# process) on free loopback ports and runs the phases below. Ratio phases
# alternate a direct run (redis-benchmark --cluster --threads 1) and a run
# through the first Slotway instance, REPS times, and report medians:
#
#   ratios   SET/GET at -P 1 and -P 16, -c 50 -d 64 (and the batching factor)
#   sizes    SET/GET by value size (-d SIZE, -P 1, -c 50)
#   clients  SET/GET with MANY_CLIENTS clients (-P 1, -d 64)
#
# and, in the first setup only (they measure the Slotway process itself;
# the two memory phases each on a fresh demo process):
#
#   idle     RSS per idle client connection (IDLE_CONNS connections), and
#            the same for one redis-server master
#   burst    RSS idle, right after a 512 KiB SET/GET burst, then every 5s
#   strace   syscalls per client command (strace -c -f on the demo process)
#
# Everything is printed and written to bench/results/latest.md. See
# bench/README.md for every variable; a quick run:
#   REPLICAS=0 REPS=1 N1=20000 N16=200000 SIZE_MB=32 SIZE_NMAX=20000 \
#     MANY_N=20000 BURST_N=100 BURST_WAIT=10 IDLE_CONNS=1000 \
#     STRACE_N=2000 STRACE_IDLE=2 bench/run.sh
#
# Environment (defaults in brackets; a phase is off at 0 or empty):
#   REPLICAS         setups to run, replicas per master, in order ["0 1"]
#   REPS             repetitions per configuration [3]
#   N1, N16          requests per command at -P 1 / -P 16 [200000, 2000000];
#                    RATIOS=0 skips that phase [1]
#   SIZES            value sizes in bytes ["64 4096 65536 524288"]
#   SIZE_MB          MiB written per SET run of the sizes phase [512];
#                    requests = min(SIZE_NMAX, SIZE_MB MiB / size)
#   SIZE_NMAX        most requests per command in the sizes phase [50000]
#   MANY_CLIENTS     clients of the clients phase [1000]
#   MANY_N           requests per command in the clients phase [200000]
#   BURST_N          512 KiB requests per command in the burst [2000]
#   BURST_WAIT       seconds to watch RSS after the burst [60]
#   IDLE_CONNS       idle connections to open [10000]
#   STRACE_N         requests per command traced [50000]
#   STRACE_IDLE      seconds traced without traffic, the background rate [5]
#   SLOTWAY_BACKEND_CONNS  passed through to the demo (backend conns per node)
#   SLOTWAY_EVENT_LOOPS    passed through to the demo (proxy.event_loops; -1: none)
#   READY_TIMEOUT    seconds to wait for the demo to be ready [120]
set -euo pipefail

REPLICAS=${REPLICAS-0 1}
REPS=${REPS:-3}
RATIOS=${RATIOS:-1}
N1=${N1:-200000}
N16=${N16:-2000000}
SIZES=${SIZES-64 4096 65536 524288}
SIZE_MB=${SIZE_MB:-512}
SIZE_NMAX=${SIZE_NMAX:-50000}
MANY_CLIENTS=${MANY_CLIENTS:-1000}
MANY_N=${MANY_N:-200000}
BURST_N=${BURST_N:-2000}
BURST_WAIT=${BURST_WAIT:-60}
IDLE_CONNS=${IDLE_CONNS:-10000}
STRACE_N=${STRACE_N:-50000}
STRACE_IDLE=${STRACE_IDLE:-5}
READY_TIMEOUT=${READY_TIMEOUT:-120}
CLIENTS=50
DATASIZE=64
KEYSPACE=100000
BURST_SIZE=524288
# Keys per value size are capped so that a size's keys hold at most this
# much per copy (128 keys of 512 KiB), whatever the number of requests.
KEYSPACE_BYTES=$((64 << 20))

for v in REPS N1 N16 SIZE_MB SIZE_NMAX READY_TIMEOUT; do
	if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
		echo "run.sh: $v must be a positive integer, got '${!v}'" >&2
		exit 2
	fi
done
for v in RATIOS MANY_CLIENTS MANY_N BURST_N BURST_WAIT IDLE_CONNS STRACE_N STRACE_IDLE; do
	if ! [[ ${!v} =~ ^[0-9]+$ ]]; then
		echo "run.sh: $v must be an integer >= 0, got '${!v}'" >&2
		exit 2
	fi
done
for r in $REPLICAS; do
	if ! [[ $r =~ ^[0-2]$ ]]; then
		echo "run.sh: REPLICAS must list replica counts 0, 1 or 2, got '$REPLICAS'" >&2
		exit 2
	fi
done
if [[ -z ${REPLICAS// /} ]]; then
	echo "run.sh: REPLICAS is empty: no setup to run" >&2
	exit 2
fi
for s in $SIZES; do
	if ! [[ $s =~ ^[1-9][0-9]*$ ]]; then
		echo "run.sh: SIZES must list positive byte counts, got '$SIZES'" >&2
		exit 2
	fi
done
if ((MANY_CLIENTS > 0 && MANY_N == 0)); then
	echo "run.sh: MANY_N must be positive when MANY_CLIENTS is set" >&2
	exit 2
fi
if ((IDLE_CONNS > 10000)); then
	# The demo's instances keep proxy.max_clients at its default, 10000.
	echo "run.sh: IDLE_CONNS must be at most 10000 (the demo's max_clients), got $IDLE_CONNS" >&2
	exit 2
fi
if [[ -n ${SLOTWAY_BACKEND_CONNS:-} ]] && ! [[ $SLOTWAY_BACKEND_CONNS =~ ^[1-9][0-9]*$ ]]; then
	echo "run.sh: SLOTWAY_BACKEND_CONNS must be a positive integer, got '$SLOTWAY_BACKEND_CONNS'" >&2
	exit 2
fi
for c in go redis-benchmark curl awk; do
	if ! command -v "$c" >/dev/null; then
		echo "run.sh: $c not found on PATH (redis-benchmark: apt-get install -y redis-tools)" >&2
		exit 2
	fi
done
if ((STRACE_N > 0)) && ! command -v strace >/dev/null; then
	echo "run.sh: strace not found on PATH (make deps, or apt-get install -y strace; STRACE_N=0 skips the phase)" >&2
	exit 2
fi

# File descriptors: redis-benchmark's MANY_CLIENTS connections and the
# idle-connection tool's (Go raises its own soft limit to the hard one, but
# the hard one must be high enough). The demo and its redis-servers inherit
# the raised limit.
need_fds=$((1024 + (MANY_CLIENTS > IDLE_CONNS ? MANY_CLIENTS : IDLE_CONNS)))
if (($(ulimit -Sn) < need_fds)); then
	if ! ulimit -Sn "$need_fds" 2>/dev/null; then
		echo "run.sh: need $need_fds open files, the limit is $(ulimit -Sn) (hard $(ulimit -Hn)); lower MANY_CLIENTS/IDLE_CONNS or raise the hard limit" >&2
		exit 2
	fi
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

work=$(mktemp -d "${TMPDIR:-/tmp}/slotway-bench.XXXXXX")
rb_pid=""
idle_pid=""
strace_pid=""
trace_t0=""
trace_secs=0
report=$work/report.md
notes=$work/notes.txt # distinct redis-benchmark stderr lines
: >"$report"
: >"$notes"

# stop_demo, stop_bg, start_demo, node_events and their helpers.
slotway_bin=bin/slotway
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_bg "$rb_pid"
	stop_bg "$idle_pid"
	stop_bg "$strace_pid"
	if ((rc != 0)) && ((${#node_logs[@]} > 0)); then
		echo "--- Redis node events since the demo became ready:" >&2
		node_events | tail -n 40 >&2
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

# scrape prints "<get+set ok commands> <backend writes>" from Slotway's metrics.
# Values may be printed in exponent form (2.2e+06); awk reads those fine.
scrape() {
	local m
	m=$(curl -fsS --max-time 10 "http://$stats/metrics")
	awk '
		/^slotway_proxy_commands_total\{/ && /command="(get|set)"/ && /result="ok"/ { c += $2 }
		/^slotway_proxy_backend_writes_total[ {]/ { w += $2 }
		END { printf "%.0f %.0f\n", c, w }' <<<"$m"
}

# rss_kb PID prints the resident set size of PID in KiB.
rss_kb() {
	awk '/^VmRSS:/ { print $2; found = 1 } END { if (!found) print 0 }' "/proc/$1/status" 2>/dev/null || echo 0
}

# steady_rss PID waits (up to 30s) until the RSS of PID changes by less than
# 1 MiB in 2s, and prints it in KiB: a fresh demo may still be settling, an
# earlier phase may still be handing memory back to the OS.
steady_rss() {
	local i prev cur
	cur=$(rss_kb "$1")
	for ((i = 0; i < 15; i++)); do
		sleep 2
		prev=$cur
		cur=$(rss_kb "$1")
		if (((cur > prev ? cur - prev : prev - cur) < 1024)); then break; fi
	done
	echo "$cur"
}

# hwm_kb PID prints the peak resident set size of PID in KiB.
hwm_kb() {
	awk '/^VmHWM:/ { print $2; found = 1 } END { if (!found) print 0 }' "/proc/$1/status" 2>/dev/null || echo 0
}

# mib KB prints KiB as MiB with one decimal.
mib() {
	awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'
}

# size_label BYTES prints 64 B, 4 KiB, 512 KiB ...
size_label() {
	if (($1 >= 1024 && $1 % 1024 == 0)); then echo "$(($1 / 1024)) KiB"; else echo "$1 B"; fi
}

# pair DEST KEY REP CLIENTS SIZE PIPELINE N runs one direct and one Slotway
# run back to back.
pair() {
	rb "$1" "$2" direct "$master_port" "$3" "$4" "$5" "$6" "$7" --cluster --threads 1
	rb "$1" "$2" slotway "$endpoint_port" "$3" "$4" "$5" "$6" "$7"
}

# summarize FMT FILE KEYNAME "KEYS" prints the medians and ratios per key
# (pipeline depth, value size, clients) and command (FMT is text or md).
summarize() {
	awk -F'\t' -v fmt="$1" -v keyname="$3" -v keys="$4" "$awk_stats"'
		function label(k) {
			if (keyname != "value size") return k
			return (k >= 1024 && k % 1024 == 0) ? (k / 1024 " KiB") : (k " B")
		}
		{ add($1 SUBSEP $2 SUBSEP $4 SUBSEP "rps", $5); add($1 SUBSEP $2 SUBSEP $4 SUBSEP "p99", $6) }
		END {
			if (fmt == "md") {
				print "| " keyname " | command | rps direct | rps slotway | rps ratio | p99 direct (ms) | p99 slotway (ms) | p99 ratio |"
				print "|---:|:---|---:|---:|---:|---:|---:|---:|"
			} else {
				printf "%-10s %-7s %12s %12s %9s %11s %12s %9s\n", keyname, "command", "rps direct", "rps slotway", "rps ratio", "p99 direct", "p99 slotway", "p99 ratio"
			}
			nk = split(keys, ks, " "); split("set get", cs, " ")
			for (i = 1; i <= nk; i++) for (j = 1; j <= 2; j++) {
				p = ks[i]; c = cs[j]; k = p SUBSEP c
				if (!cnt[k SUBSEP "direct" SUBSEP "rps"] || !cnt[k SUBSEP "slotway" SUBSEP "rps"]) continue
				rd = median(k SUBSEP "direct" SUBSEP "rps"); rs = median(k SUBSEP "slotway" SUBSEP "rps")
				ld = median(k SUBSEP "direct" SUBSEP "p99"); ls = median(k SUBSEP "slotway" SUBSEP "p99")
				if (fmt == "md")
					printf "| %s | %s | %.0f | %.0f | %s | %.3f | %.3f | %s |\n", label(p), toupper(c), rd, rs, ratio(rs, rd), ld, ls, ratio(ls, ld)
				else
					printf "%-10s %-7s %12.0f %12.0f %9s %11.3f %12.3f %9s\n", label(p), toupper(c), rd, rs, ratio(rs, rd), ld, ls, ratio(ls, ld)
			}
		}' "$2"
}

# batching FORMAT FILE prints commands per backend write for each pipeline depth.
batching() {
	awk -F'\t' -v fmt="$1" '
		{ c[$1] += $2; w[$1] += $3 }
		END {
			if (fmt == "md") {
				print "| pipeline | GET+SET commands | backend writes | commands per write |"
				print "|---:|---:|---:|---:|"
			} else {
				printf "%-8s %16s %15s %19s\n", "pipeline", "GET+SET commands", "backend writes", "commands per write"
			}
			split("1 16", ps, " ")
			for (i = 1; i <= 2; i++) {
				p = ps[i]
				if (!(p in c)) continue
				f = w[p] > 0 ? sprintf("%.2f", c[p] / w[p]) : "n/a"
				if (fmt == "md") printf "| %s | %.0f | %.0f | %s |\n", p, c[p], w[p], f
				else printf "%-8s %16.0f %15.0f %19s\n", "-P " p, c[p], w[p], f
			}
		}' "$2"
}

# rawtable FILE KEYNAME prints every run as a markdown table.
rawtable() {
	sort -t$'\t' -k1,1n -k2,2r -k4,4 -k3,3n "$1" | awk -F'\t' -v keyname="$2" '
		BEGIN { print "| " keyname " | command | target | rep | rps | p99 (ms) |"; print "|---:|:---|:---|---:|---:|---:|" }
		{ printf "| %s | %s | %s | %s | %.0f | %.3f |\n", $1, toupper($2), $4, $3, $5, $6 }
		END { print "" }'
}

# md appends its arguments, one line each, to the report.
md() {
	printf '%s\n' "$@" >>"$report"
}

# phase_ratios R: SET/GET at -P 1 and -P 16 (the original benchmark).
phase_ratios() {
	local raw=$work/r$1-ratios.tsv batch=$work/r$1-batch.tsv rep pipeline n before after c0 w0 c1 w1
	: >"$raw"
	: >"$batch"
	echo
	echo "== ratios: REPS=$REPS, -P 1 with N=$N1, -P 16 with N=$N16, -c $CLIENTS -d $DATASIZE -r $KEYSPACE"
	for ((rep = 1; rep <= REPS; rep++)); do
		for pipeline in 1 16; do
			if ((pipeline == 1)); then n=$N1; else n=$N16; fi
			rb "$raw" "$pipeline" direct "$master_port" "$rep" "$CLIENTS" "$DATASIZE" "$pipeline" "$n" --cluster --threads 1
			before=$(scrape)
			rb "$raw" "$pipeline" slotway "$endpoint_port" "$rep" "$CLIENTS" "$DATASIZE" "$pipeline" "$n"
			after=$(scrape)
			read -r c0 w0 <<<"$before"
			read -r c1 w1 <<<"$after"
			printf '%s\t%s\t%s\n' "$pipeline" $((c1 - c0)) $((w1 - w0)) >>"$batch"
		done
	done
	echo "-- median of $REPS runs (ratios are slotway/direct: rps ratio < 1 is slower, p99 ratio > 1 is slower)"
	summarize text "$raw" pipeline "1 16"
	echo "-- slotway batching factor (GET+SET commands per backend write syscall)"
	batching text "$batch"
	md "### Pipeline depth (-c $CLIENTS -d $DATASIZE, N1=$N1, N16=$N16, median of $REPS)" ""
	summarize md "$raw" pipeline "1 16" >>"$report"
	md "" "Batching factor (GET+SET commands per backend write):" ""
	batching md "$batch" >>"$report"
	md ""
	rawtable "$raw" pipeline >>"$work/r$1-raw.md"
}

# size_n SIZE prints the requests per command for a value size.
size_n() {
	local n=$(((SIZE_MB << 20) / $1))
	((n <= SIZE_NMAX)) || n=$SIZE_NMAX
	((n >= 100)) || n=100
	echo "$n"
}

# phase_sizes R: SET/GET by value size at -P 1.
phase_sizes() {
	local raw=$work/r$1-sizes.tsv rep s
	: >"$raw"
	echo
	echo "== value sizes: REPS=$REPS, sizes $SIZES, -P 1 -c $CLIENTS, at most $SIZE_MB MiB or $SIZE_NMAX requests per command"
	for ((rep = 1; rep <= REPS; rep++)); do
		for s in $SIZES; do
			pair "$raw" "$s" "$rep" "$CLIENTS" "$s" 1 "$(size_n "$s")"
		done
	done
	echo "-- median of $REPS runs"
	summarize text "$raw" "value size" "$SIZES"
	md "### Value size (-P 1 -c $CLIENTS, median of $REPS)" ""
	md "Requests per command: $(for s in $SIZES; do printf '%s: %s; ' "$(size_label "$s")" "$(size_n "$s")"; done)keys capped at $((KEYSPACE_BYTES >> 20)) MiB per size." ""
	summarize md "$raw" "value size" "$SIZES" >>"$report"
	md ""
	rawtable "$raw" "value size (bytes)" >>"$work/r$1-raw.md"
}

# phase_clients R: SET/GET with MANY_CLIENTS clients.
phase_clients() {
	local raw=$work/r$1-clients.tsv rep
	: >"$raw"
	echo
	echo "== $MANY_CLIENTS clients: REPS=$REPS, N=$MANY_N, -P 1 -d $DATASIZE"
	for ((rep = 1; rep <= REPS; rep++)); do
		pair "$raw" "$MANY_CLIENTS" "$rep" "$MANY_CLIENTS" "$DATASIZE" 1 "$MANY_N"
	done
	echo "-- median of $REPS runs"
	summarize text "$raw" clients "$MANY_CLIENTS"
	md "### $MANY_CLIENTS clients (-P 1 -d $DATASIZE, N=$MANY_N, median of $REPS)" ""
	summarize md "$raw" clients "$MANY_CLIENTS" >>"$report"
	md ""
	rawtable "$raw" clients >>"$work/r$1-raw.md"
}

# phase_burst: the Slotway process's RSS idle, right after a burst of
# 512 KiB SETs and GETs, and every 5s for BURST_WAIT seconds.
phase_burst() {
	local idle after peak t rss series="" within=""
	echo
	echo "== RSS after a large-value burst: $BURST_N SET and GET of $(size_label $BURST_SIZE) through slotway, -c $CLIENTS -P 1"
	idle=$(steady_rss "$demo_pid")
	rb /dev/null burst slotway "$endpoint_port" 1 "$CLIENTS" "$BURST_SIZE" 1 "$BURST_N"
	after=$(rss_kb "$demo_pid")
	peak=$(hwm_kb "$demo_pid")
	echo "   idle $(mib "$idle") MiB; right after the burst $(mib "$after") MiB ($(awk -v a="$after" -v i="$idle" 'BEGIN { printf "%.2f", a / i }')x idle); peak (VmHWM) $(mib "$peak") MiB"
	for ((t = 5; t <= BURST_WAIT; t += 5)); do
		sleep 5
		rss=$(rss_kb "$demo_pid")
		series="$series ${t}s $(mib "$rss");"
		echo "   after ${t}s: $(mib "$rss") MiB ($(awk -v a="$rss" -v i="$idle" 'BEGIN { printf "%.2f", a / i }')x idle)"
		if [[ -z $within ]] && ((rss <= 2 * idle)); then within="${t}s"; fi
	done
	if ((after <= 2 * idle)); then within="at once"; fi
	echo "   within 2x of idle: ${within:-not within ${BURST_WAIT}s}"
	md "### RSS after a large-value burst" ""
	md "RSS of the demo process (both Slotway instances; the burst goes to one) before and after $BURST_N SETs and $BURST_N GETs of $(size_label $BURST_SIZE) (-c $CLIENTS -P 1), then every 5 s." ""
	md "| idle (MiB) | peak (MiB) | right after (MiB) | after 5 s steps (MiB) | within 2x of idle |" "|---:|---:|---:|:---|:---|"
	md "| $(mib "$idle") | $(mib "$peak") | $(mib "$after") |${series:- (BURST_WAIT=0)} | ${within:-not within ${BURST_WAIT}s} |" ""
}

# idle_rss NAME PID PORT opens IDLE_CONNS idle connections to PORT, each
# after one PING, and prints "NAME open before with" (RSS of PID in KiB).
idle_rss() {
	local name=$1 pid=$2 port=$3 before with line i open failed
	before=$(steady_rss "$pid")
	"$work/idleconns" -addr "127.0.0.1:$port" -n "$IDLE_CONNS" -hold 10m >"$work/idle.out" 2>"$work/idle.err" &
	idle_pid=$!
	line=""
	for ((i = 0; i < 600; i++)); do
		line=$(grep '^open ' "$work/idle.out" || true)
		[[ -z $line ]] || break
		if ! kill -0 "$idle_pid" 2>/dev/null; then break; fi
		sleep 0.2
	done
	if [[ -z $line ]]; then
		echo "run.sh: idleconns ($name) did not report within 120s:" >&2
		cat "$work/idle.err" >&2
		return 1
	fi
	# Let the server finish its per-connection setup before reading RSS.
	sleep 2
	with=$(rss_kb "$pid")
	stop_bg "$idle_pid"
	idle_pid=""
	if [[ -s $work/idle.err ]]; then sed "s/^/   $name: /" "$work/idle.err"; fi
	read -r _ open _ failed <<<"$line"
	echo "$name $open $failed $before $with"
}

# phase_idle: memory per idle client connection, Slotway and a Redis master.
phase_idle() {
	local rows=$work/idle.tsv
	: >"$rows"
	echo
	echo "== memory per idle connection: $IDLE_CONNS connections, each sent one PING and stays open"
	idle_rss slotway "$demo_pid" "$endpoint_port" >>"$rows"
	# Let Slotway close the clients before the next measurement.
	sleep 2
	if [[ -n $master_pid ]]; then
		idle_rss redis-master "$master_pid" "$master_port" >>"$rows"
	else
		echo "   (no redis-server pid found for port $master_port; skipping the direct measurement)"
	fi
	grep -v '^ ' "$rows" | awk '
		{ printf "   %-13s open %5d failed %5d  RSS %8.1f -> %8.1f MiB  %6.1f KiB per connection\n", $1, $2, $3, $4 / 1024, $5 / 1024, $2 ? ($5 - $4) / $2 : 0 }'
	grep '^ ' "$rows" || true
	md "### Memory per idle connection" ""
	md "RSS before and with $IDLE_CONNS client connections open, each having sent one PING. slotway: the demo process (both instances, HA, stats, scaler; the connections go to one instance); redis-master: one master's redis-server (its maxclients, 10000 by default, can refuse a few)." ""
	md "| process | open | failed | RSS before (MiB) | RSS with connections (MiB) | KiB per connection |" "|:---|---:|---:|---:|---:|---:|"
	grep -v '^ ' "$rows" | awk '{ printf "| %s | %d | %d | %.1f | %.1f | %.1f |\n", $1, $2, $3, $4 / 1024, $5 / 1024, $2 ? ($5 - $4) / $2 : 0 }' >>"$report"
	md ""
}

# strace_attach starts strace -c -f on the demo process, the summary going
# to $work/strace.txt; it returns 1 when strace could not attach.
strace_attach() {
	local i
	: >"$work/strace.err"
	strace -f -c -U calls,name -S calls -o "$work/strace.txt" -p "$demo_pid" 2>"$work/strace.err" &
	strace_pid=$!
	for ((i = 0; i < 100; i++)); do
		grep -q 'attached' "$work/strace.err" && break
		kill -0 "$strace_pid" 2>/dev/null || break
		sleep 0.1
	done
	trace_t0=$EPOCHREALTIME
	if ! grep -q 'attached' "$work/strace.err"; then
		stop_bg "$strace_pid"
		strace_pid=""
		echo "   strace could not attach (ptrace not permitted?); skipping the phase:"
		sed 's/^/   /' "$work/strace.err"
		md "### Syscalls per command" "" "strace could not attach; skipped." ""
		return 1
	fi
	# -f attaches every thread in turn; let it finish.
	sleep 1
}

# strace_detach stops strace (SIGINT: it detaches and writes the summary)
# and sets trace_secs to how long it was attached.
strace_detach() {
	kill -INT "$strace_pid" 2>/dev/null || true
	wait "$strace_pid" 2>/dev/null || true
	strace_pid=""
	trace_secs=$(awk -v a="$trace_t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
}

# strace_total prints the total calls of the last strace run.
strace_total() {
	awk '$2 == "total" { print $1 }' "$work/strace.txt"
}

# phase_strace: syscalls per client command through Slotway.
phase_strace() {
	local before after c0 c1 cmds total dur idle_total=0 idle_secs=0 idle_rate=0
	echo
	echo "== syscalls per command: strace -c -f -p <demo pid> during $STRACE_N SET and $STRACE_N GET (-c $CLIENTS -P 1 -d $DATASIZE)"
	if ((STRACE_IDLE > 0)); then
		strace_attach || return 0
		sleep "$STRACE_IDLE"
		strace_detach
		idle_total=$(strace_total)
		idle_secs=$trace_secs
		idle_rate=$(awk -v t="$idle_total" -v s="$idle_secs" 'BEGIN { printf "%.0f", (s > 0 ? t / s : 0) }')
		echo "   background, no traffic: $idle_total syscalls in ${idle_secs}s = $idle_rate/s (HA gossip, health checks, stats, scaler, Go runtime)"
	fi
	before=$(scrape)
	strace_attach || return 0
	rb /dev/null strace slotway "$endpoint_port" 1 "$CLIENTS" "$DATASIZE" 1 "$STRACE_N"
	strace_detach
	dur=$trace_secs
	after=$(scrape)
	read -r c0 _ <<<"$before"
	read -r c1 _ <<<"$after"
	cmds=$((c1 - c0))
	total=$(strace_total)
	if ((cmds <= 0)) || [[ -z $total ]]; then
		echo "run.sh: strace phase counted $cmds commands and '${total:-no}' syscalls" >&2
		cat "$work/strace.txt" >&2
		return 1
	fi
	awk -v cmds="$cmds" -v total="$total" -v rate="$idle_rate" -v dur="$dur" '
		BEGIN {
			printf "   %d syscalls for %d GET+SET commands (slotway_proxy_commands_total): %.2f per command\n", total, cmds, total / cmds
			printf "   of which background at the idle rate over the %.1fs traced: ~%d (%.1f%%)\n", dur, rate * dur, total ? 100 * rate * dur / total : 0
		}'
	echo "   top syscalls (calls, per command):"
	awk -v cmds="$cmds" '$1 ~ /^[0-9]+$/ && $2 != "total" && n < 10 { printf "     %-16s %10d %8.3f\n", $2, $1, $1 / cmds; n++ }' "$work/strace.txt"
	md "### Syscalls per command" ""
	md "\`strace -c -f -p <demo pid>\` during $STRACE_N SETs and $STRACE_N GETs through Slotway (-c $CLIENTS -P 1 -d $DATASIZE). The count covers the whole demo process (both instances, HA gossip, health checks, stats, scaler, Go runtime); per command = total / GET+SET commands answered. Under strace Slotway runs much slower, so the background share is larger than in a normal run." ""
	awk -v cmds="$cmds" -v total="$total" -v rate="$idle_rate" -v dur="$dur" -v it="$idle_total" -v is="$idle_secs" '
		BEGIN {
			printf "- %d syscalls for %d commands: **%.2f syscalls per command**\n", total, cmds, total / cmds
			if (is > 0) printf "- background without traffic: %d syscalls in %.1f s (%d/s); over the %.1f s traced run that is ~%d, %.1f%% of the total\n", it, is, rate, dur, rate * dur, total ? 100 * rate * dur / total : 0
			print ""
			print "| syscall | calls | per command |"
			print "|:---|---:|---:|"
		}' >>"$report"
	awk -v cmds="$cmds" '$1 ~ /^[0-9]+$/ && $2 != "total" && n < 10 { printf "| %s | %d | %.3f |\n", $2, $1, $1 / cmds; n++ }' "$work/strace.txt" >>"$report"
	md ""
}

# run_setup R FIRST runs the phases against `slotway demo -replicas R`; the
# phases that measure the Slotway process itself run only when FIRST is 1.
run_setup() {
	local r=$1 first=$2 desc events=""
	if ((r == 0)); then desc="3 masters, no replicas"; else desc="3 masters with $r replica(s) each"; fi
	echo
	echo "======== setup: $desc (REPLICAS=$r)"
	start_demo "$r"
	: >"$work/r$r-raw.md"
	md "## Setup: $desc" ""
	if ((first)); then
		# Each memory phase needs a fresh process: memory the Go runtime
		# got for one (a burst's buffers, 10,000 goroutines' stacks) and
		# has not handed back yet would hide the other's growth.
		if ((IDLE_CONNS > 0)); then phase_idle; fi
		if ((BURST_N > 0)); then
			if ((IDLE_CONNS > 0)); then
				events=$(node_events)
				stop_demo
				echo
				echo "== restarting the demo for a fresh process"
				start_demo "$r"
			fi
			phase_burst
		fi
	fi
	if ((RATIOS)); then phase_ratios "$r"; fi
	if [[ -n ${SIZES// /} ]]; then phase_sizes "$r"; fi
	if ((MANY_CLIENTS > 0)); then phase_clients "$r"; fi
	if ((first && STRACE_N > 0)); then phase_strace; fi
	events=$events$(node_events)
	stop_demo
	if [[ -s $work/r$r-raw.md ]]; then
		md "<details><summary>Raw runs ($desc)</summary>" ""
		cat "$work/r$r-raw.md" >>"$report"
		md "</details>" ""
	fi
	if [[ -n $events ]]; then
		echo
		echo "== Redis node events during this setup (results may be disturbed)"
		echo "$events"
		md "Redis node events during this setup (results may be disturbed):" "" '```' "$events" '```' ""
	fi
}

echo "== building bin/slotway"
go build -o bin/slotway ./cmd/slotway
if ((IDLE_CONNS > 0)); then
	go build -o "$work/idleconns" ./bench/idleconns
fi

rb_version=$(redis-benchmark --version 2>&1 | head -n 1)
machine_cpus=$(nproc)
machine_cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
started=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
load_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
git_rev=$(git rev-parse --short HEAD 2>/dev/null || echo "no commit")
if [[ -n $(git status --porcelain 2>/dev/null | head -n 1) ]]; then
	git_rev="$git_rev (dirty tree)"
fi

first=1
for r in $REPLICAS; do
	run_setup "$r" "$first"
	first=0
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")

machine="$machine_cpus CPUs${machine_cpu_model:+ ($machine_cpu_model)}, $(uname -sr)"
params="REPLICAS=\"$REPLICAS\", REPS=$REPS, RATIOS=$RATIOS, N1=$N1, N16=$N16, SIZES=\"$SIZES\", SIZE_MB=$SIZE_MB, SIZE_NMAX=$SIZE_NMAX, MANY_CLIENTS=$MANY_CLIENTS, MANY_N=$MANY_N, BURST_N=$BURST_N, BURST_WAIT=$BURST_WAIT, IDLE_CONNS=$IDLE_CONNS, STRACE_N=$STRACE_N, STRACE_IDLE=$STRACE_IDLE, SLOTWAY_BACKEND_CONNS=${SLOTWAY_BACKEND_CONNS:-default}, SLOTWAY_EVENT_LOOPS=${SLOTWAY_EVENT_LOOPS:-default}"
note_lines=$(sort "$notes" | uniq -c | sed 's/^ *//' || true)

echo
echo "== machine: $machine"
echo "   $rb_version; $(go version); slotway tree $git_rev"
echo "   started $started; load average $load_start at start, $load_end at end"
echo "   $params"
if [[ -n $note_lines ]]; then
	echo
	echo "== redis-benchmark stderr (count, target: line)"
	echo "$note_lines"
fi

mkdir -p bench/results
out=bench/results/latest.md
{
	echo "# Slotway benchmark"
	echo
	echo "- date: $started"
	echo "- machine: $machine"
	echo "- load average: $load_start at start, $load_end at end"
	echo "- $rb_version; $(go version); slotway tree $git_rev"
	echo "- $params"
	echo "- direct: \`redis-benchmark --cluster --threads 1\` against a master; slotway: \`redis-benchmark\` against the first demo instance; runs alternate"
	echo "- ratios are slotway/direct: an rps ratio below 1 and a p99 ratio above 1 mean Slotway is slower"
	echo
	cat "$report"
	if [[ -n $note_lines ]]; then
		echo "## redis-benchmark stderr"
		echo
		echo '```'
		echo "$note_lines"
		echo '```'
	fi
} >"$out"
echo
echo "wrote $out"
