#!/usr/bin/env bash
# bench/run.sh: throughput and p99 latency of SET/GET through Slotway
# compared with redis-benchmark talking to the same Redis Cluster directly.
#
# It builds bin/slotway, starts `slotway demo` (a local 3-master cluster and
# two Slotway instances) on free loopback ports, then for REPS repetitions
# alternates a direct run (redis-benchmark --cluster) and a run through the
# first Slotway instance, for pipeline depth 1 and 16. It prints the medians,
# the ratios, the raw runs and Slotway's batching factor, and writes the
# summary to bench/results/latest.md. See bench/README.md.
#
# Environment:
#   REPS                   repetitions per configuration (default 3)
#   N1                     requests per command at -P 1  (default 200000)
#   N16                    requests per command at -P 16 (default 2000000)
#   SLOTWAY_BACKEND_CONNS  passed through to the demo (backend connections per node)
#   READY_TIMEOUT          seconds to wait for the demo to be ready (default 120)
set -euo pipefail

REPS=${REPS:-3}
N1=${N1:-200000}
N16=${N16:-2000000}
READY_TIMEOUT=${READY_TIMEOUT:-120}
CLIENTS=50
DATASIZE=64
KEYSPACE=100000

for v in REPS N1 N16 READY_TIMEOUT; do
	if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
		echo "run.sh: $v must be a positive integer, got '${!v}'" >&2
		exit 2
	fi
done
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

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

work=$(mktemp -d "${TMPDIR:-/tmp}/slotway-bench.XXXXXX")
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

# snapshot_node_logs remembers where each Redis node's log ends now; the
# node directories are the working directories of the demo's children.
snapshot_node_logs() {
	local k d
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
		tail -n +"$((node_log_lines[i] + 1))" "$f" |
			grep -E ' # |FAIL|[Ff]ailover|[Ee]lection|Marking node|Connection with .* lost' |
			grep -v 'overcommit' |
			sed "s|^|$(basename "$(dirname "$f")"): |" || true
	done
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n $rb_pid ]]; then
		kill -TERM "$rb_pid" 2>/dev/null || true
		wait "$rb_pid" 2>/dev/null || true
	fi
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

echo "== building bin/slotway"
go build -o bin/slotway ./cmd/slotway

listen_port=$(free_pair)
stats_port=$(free_pair)
echo "== starting slotway demo (listen 127.0.0.1:$listen_port, stats 127.0.0.1:$stats_port${SLOTWAY_BACKEND_CONNS:+, SLOTWAY_BACKEND_CONNS=$SLOTWAY_BACKEND_CONNS})"
bin/slotway demo -listen "127.0.0.1:$listen_port" -stats "127.0.0.1:$stats_port" \
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
# The stats line follows the endpoint line; give it a moment.
for ((i = 0; i < 25; i++)); do
	grep -q '^stats: ' "$work/demo.out" && break
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

# The demo's autoscaler would scale out under the benchmark's load, and a
# slot move in the middle of a run stops redis-benchmark --cluster
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

rb_version=$(redis-benchmark --version 2>&1 | head -n 1)
machine_cpus=$(nproc)
machine_cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
started=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
load_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
git_rev=$(git rev-parse --short HEAD 2>/dev/null || echo "no commit")
if [[ -n $(git status --porcelain 2>/dev/null | head -n 1) ]]; then
	git_rev="$git_rev (dirty tree)"
fi

raw=$work/raw.tsv         # pipeline cmd rep target rps p99
batch=$work/batch.tsv     # pipeline delta_cmds delta_writes
notes=$work/notes.txt     # distinct redis-benchmark stderr lines
: >"$raw"
: >"$batch"
: >"$notes"

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

# bench TARGET PORT PIPELINE N REP [extra redis-benchmark args...]
# runs redis-benchmark once and appends its SET and GET rows to $raw.
bench() {
	local target=$1 port=$2 pipeline=$3 n=$4 rep=$5
	shift 5
	local out=$work/rb.out err=$work/rb.err
	# Run it in the background and wait: bash runs the INT/TERM traps only
	# after a foreground command ends, but interrupts `wait` at once.
	redis-benchmark -h 127.0.0.1 -p "$port" "$@" -t set,get -r "$KEYSPACE" -d "$DATASIZE" \
		-c "$CLIENTS" -n "$n" -P "$pipeline" --csv >"$out" 2>"$err" &
	rb_pid=$!
	local rc=0
	wait "$rb_pid" || rc=$?
	rb_pid=""
	if ((rc != 0)); then
		echo "run.sh: redis-benchmark ($target, -P $pipeline) failed:" >&2
		cat "$out" "$err" >&2
		return 1
	fi
	# --csv prints a header line and one line per test; in --cluster mode it
	# also prints the cluster layout first. Columns are looked up by name.
	if ! awk -F, -v OFS='\t' -v p="$pipeline" -v rep="$rep" -v target="$target" '
		{ gsub(/"/, ""); gsub(/\r/, "") }
		$1 == "test" { for (i = 1; i <= NF; i++) col[$i] = i; hdr = 1; next }
		hdr && ($1 == "SET" || $1 == "GET") {
			if (!("rps" in col) || !("p99_latency_ms" in col)) { bad = 1; exit }
			print p, tolower($1), rep, target, $col["rps"], $col["p99_latency_ms"]
			found++
		}
		END { if (bad || found != 2) exit 1 }' "$out" >>"$raw"; then
		echo "run.sh: unexpected redis-benchmark output ($target, -P $pipeline):" >&2
		cat "$out" "$err" >&2
		return 1
	fi
	if [[ -s $err ]]; then
		tr '\r' '\n' <"$err" | sed '/^[[:space:]]*$/d; s/^/'"$target"': /' >>"$notes"
	fi
	awk -F'\t' -v p="$pipeline" -v rep="$rep" -v target="$target" '
		$1 == p && $3 == rep && $4 == target { s = s sprintf("  %s %10.0f rps  p99 %7.3f ms", toupper($2), $5, $6) }
		END { printf "  rep %s  -P %-2s %-8s%s\n", rep, p, target, s }' "$raw"
}

echo
echo "== benchmark: REPS=$REPS, -P 1 with N=$N1, -P 16 with N=$N16, -c $CLIENTS -d $DATASIZE -r $KEYSPACE"
echo "   direct:  redis-benchmark --cluster --threads 1 -p $master_port"
echo "   slotway: redis-benchmark -p $endpoint_port"
for ((rep = 1; rep <= REPS; rep++)); do
	for pipeline in 1 16; do
		if ((pipeline == 1)); then n=$N1; else n=$N16; fi
		bench direct "$master_port" "$pipeline" "$n" "$rep" --cluster --threads 1
		before=$(scrape)
		bench slotway "$endpoint_port" "$pipeline" "$n" "$rep"
		after=$(scrape)
		read -r c0 w0 <<<"$before"
		read -r c1 w1 <<<"$after"
		printf '%s\t%s\t%s\n' "$pipeline" $((c1 - c0)) $((w1 - w0)) >>"$batch"
	done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
events=$(node_events)

stop_demo

# summarize FORMAT prints the summary table (FORMAT is text or md).
summarize() {
	awk -F'\t' -v fmt="$1" '
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
		{ add($1 SUBSEP $2 SUBSEP $4 SUBSEP "rps", $5); add($1 SUBSEP $2 SUBSEP $4 SUBSEP "p99", $6) }
		END {
			if (fmt == "md") {
				print "| pipeline | command | rps direct | rps slotway | rps ratio | p99 direct (ms) | p99 slotway (ms) | p99 ratio |"
				print "|---:|:---|---:|---:|---:|---:|---:|---:|"
			} else {
				printf "%-8s %-7s %12s %12s %9s %11s %12s %9s\n", "pipeline", "command", "rps direct", "rps slotway", "rps ratio", "p99 direct", "p99 slotway", "p99 ratio"
			}
			split("1 16", ps, " "); split("set get", cs, " ")
			for (i = 1; i <= 2; i++) for (j = 1; j <= 2; j++) {
				p = ps[i]; c = cs[j]; k = p SUBSEP c
				if (!cnt[k SUBSEP "direct" SUBSEP "rps"] || !cnt[k SUBSEP "slotway" SUBSEP "rps"]) continue
				rd = median(k SUBSEP "direct" SUBSEP "rps"); rs = median(k SUBSEP "slotway" SUBSEP "rps")
				ld = median(k SUBSEP "direct" SUBSEP "p99"); ls = median(k SUBSEP "slotway" SUBSEP "p99")
				if (fmt == "md")
					printf "| %s | %s | %.0f | %.0f | %s | %.3f | %.3f | %s |\n", p, toupper(c), rd, rs, ratio(rs, rd), ld, ls, ratio(ls, ld)
				else
					printf "%-8s %-7s %12.0f %12.0f %9s %11.3f %12.3f %9s\n", "-P " p, toupper(c), rd, rs, ratio(rs, rd), ld, ls, ratio(ls, ld)
			}
		}' "$raw"
}

# batching FORMAT prints commands per backend write for each pipeline depth.
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
		}' "$batch"
}

# rawtable FORMAT prints every run.
rawtable() {
	sort -t$'\t' -k1,1n -k2,2r -k4,4 -k3,3n "$raw" | awk -F'\t' -v fmt="$1" '
		BEGIN {
			if (fmt == "md") { print "| pipeline | command | target | rep | rps | p99 (ms) |"; print "|---:|:---|:---|---:|---:|---:|" }
			else printf "%-8s %-7s %-8s %3s %12s %9s\n", "pipeline", "command", "target", "rep", "rps", "p99 ms"
		}
		{
			if (fmt == "md") printf "| %s | %s | %s | %s | %.0f | %.3f |\n", $1, toupper($2), $4, $3, $5, $6
			else printf "%-8s %-7s %-8s %3s %12.0f %9.3f\n", "-P " $1, toupper($2), $4, $3, $5, $6
		}'
}

machine="$machine_cpus CPUs${machine_cpu_model:+ ($machine_cpu_model)}, $(uname -sr)"
params="REPS=$REPS, N1=$N1, N16=$N16, -c $CLIENTS -d $DATASIZE -r $KEYSPACE, SLOTWAY_BACKEND_CONNS=${SLOTWAY_BACKEND_CONNS:-default}"
note_lines=$(sort "$notes" | uniq -c | sed 's/^ *//' || true)

echo
echo "== raw runs"
rawtable text
echo
echo "== machine: $machine"
echo "   $rb_version; $(go version); slotway tree $git_rev"
echo "   started $started; load average $load_start at start, $load_end at end"
echo "   $params"
echo
echo "== median of $REPS runs (ratios are slotway/direct: rps ratio < 1 is slower, p99 ratio > 1 is slower)"
summarize text
echo
echo "== slotway batching factor (GET+SET commands per backend write syscall)"
batching text
if [[ -n $note_lines ]]; then
	echo
	echo "== redis-benchmark stderr (count, target: line)"
	echo "$note_lines"
fi
if [[ -n $events ]]; then
	echo
	echo "== Redis node events during the benchmark (results may be disturbed)"
	echo "$events"
fi

mkdir -p bench/results
md=bench/results/latest.md
{
	echo "# Slotway benchmark"
	echo
	echo "- date: $started"
	echo "- machine: $machine"
	echo "- load average: $load_start at start, $load_end at end"
	echo "- $rb_version; $(go version); slotway tree $git_rev"
	echo "- $params"
	echo "- direct: \`redis-benchmark --cluster --threads 1\` against a master; slotway: \`redis-benchmark\` against the first demo instance"
	echo
	echo "## Median of $REPS runs"
	echo
	echo "Ratios are slotway/direct: an rps ratio below 1 and a p99 ratio above 1 mean Slotway is slower."
	echo
	summarize md
	echo
	echo "## Batching factor"
	echo
	batching md
	echo
	echo "## Raw runs"
	echo
	rawtable md
	if [[ -n $note_lines ]]; then
		echo
		echo "## redis-benchmark stderr"
		echo
		echo '```'
		echo "$note_lines"
		echo '```'
	fi
	if [[ -n $events ]]; then
		echo
		echo "## Redis node events during the benchmark"
		echo
		echo '```'
		echo "$events"
		echo '```'
	fi
} >"$md"
echo
echo "wrote $md"
