#!/usr/bin/env bash
# The replica side of the capacity model (README, "Capacity"): what each
# replica pays per announcement and per delivery, measured on a Postgres
# server of your own (a scratch database: the run adds users, rooms and
# messages to it).
#
#   scripts/capacity.sh postgres://postgres@127.0.0.1:5432/scratch
#
# Starts a setup replica and CAPACITY_REPLICAS replicas (default 4) on that
# database. The first CAPACITY_LOADED of them (default 3) take the load,
# cmd/parley-bench with BENCH_ARGS (streams and posts over them in turn);
# the others take nothing, so they pay only for hearing every announcement
# of rooms they have no subscriber in. For each replica it prints the CPU
# time it used during the run (user + system, from /proc), the events it
# fanned out (parley_events_fanned_out_total) and the posts it answered,
# with the load average: divide to get the costs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

url=${1:?usage: capacity.sh DATABASE_URL}
replicas=${CAPACITY_REPLICAS:-4}
loaded=${CAPACITY_LOADED:-3}
args=${BENCH_ARGS:--streams 2000 -rooms 100 -rate 500 -duration 30s}

export PARLEY_DATABASE_URL=$url
export PARLEY_JWT_SECRET=${PARLEY_JWT_SECRET:-capacity-run-secret-0123456789abcdef0123456789}
export PARLEY_POST_RATE=1000 PARLEY_POST_BURST=2000
export PARLEY_STREAMS_PER_USER=1000 PARLEY_MAX_STREAMS=16000
export PARLEY_LOGIN_FAILURES=1000 PARLEY_LOGIN_FAILURES_PER_USER=10000

mkdir -p bin
go build -o bin/parley ./cmd/parley
go build -o bin/parley-bench ./cmd/parley-bench
work=$(mktemp -d /tmp/parley-capacity.XXXXXX)
declare -a pids=()
cleanup() {
	for f in "$work"/*.log; do
		if grep -q -m1 -E '^(panic|fatal error)' "$f"; then
			echo "capacity: $(basename "$f" .log) crashed:" >&2
			grep -A30 -m1 -E '^(panic|fatal error)' "$f" >&2
		fi
	done
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

# start PORT: a replica, waited for until ready; its pid goes to pids.
start() {
	PARLEY_ADDR="127.0.0.1:$1" bin/parley serve >"$work/$1.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 600); do
		curl -fs "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "capacity: replica on $1 not ready" >&2
	cat "$work/$1.log" >&2
	exit 1
}

# cpu PID: user + system CPU seconds so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
# metric PORT NAME: a counter's value (summed over its labels).
metric() { curl -fs "http://127.0.0.1:$1/metrics" | awk -v n="$2" 'index($0, n) == 1 {s += $NF} END {printf "%.0f", s}'; }

start 18190 # setup
ports=()
for i in $(seq "$replicas"); do
	ports+=($((18190 + i)))
	start $((18190 + i))
done
urls=()
load_pids=()
for i in $(seq 0 $((loaded - 1))); do
	urls+=("http://127.0.0.1:${ports[$i]}")
	load_pids+=("${pids[$((i + 1))]}")
done

declare -A cpu0 fan0 post0
for i in "${!ports[@]}"; do
	p=${ports[$i]}
	cpu0[$p]=$(cpu "${pids[$((i + 1))]}")
	fan0[$p]=$(metric "$p" parley_events_fanned_out_total)
	post0[$p]=$(metric "$p" 'parley_http_requests_total{operation="postMessage",status="201"}')
done
echo "capacity: $replicas replicas, $loaded loaded; $(uptime)"
bin/parley-bench -quiet -setup-url http://127.0.0.1:18190 -urls "$(IFS=,; echo "${urls[*]}")" \
	-pids "$(IFS=,; echo "${load_pids[*]}")" $args
echo "capacity: after the run; $(uptime)"
printf '%-6s %-7s %10s %12s %10s\n' replica role cpu_s fanned_out posts
for i in "${!ports[@]}"; do
	p=${ports[$i]}
	role=loaded
	[ "$i" -ge "$loaded" ] && role=idle
	c=$(cpu "${pids[$((i + 1))]}")
	f=$(metric "$p" parley_events_fanned_out_total)
	n=$(metric "$p" 'parley_http_requests_total{operation="postMessage",status="201"}')
	printf '%-6s %-7s %10.2f %12d %10d\n' "$p" "$role" "$(echo "$c - ${cpu0[$p]}" | bc)" $((f - fan0[$p])) $((n - post0[$p]))
done
