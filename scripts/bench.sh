#!/usr/bin/env bash
# make bench: Parley under load, measured by cmd/parley-bench.
#
# Starts a private Postgres cluster with fsync on (through a setup replica,
# which owns it and takes the registrations, so password hashing does not
# grow the heaps measured), then for each scenario two fresh replicas with
# limits raised high but on, runs the load tool, and writes its reports
# (table and JSON) to $BENCH_OUT. Scenarios (BENCH_SCENARIOS, in order):
#
#   idle     10,000 streams over 2 replicas, 100 rooms: RSS per stream
#            (then one post per room, which every stream must receive)
#   fanout   5,000 streams, 100 rooms, 200 posts/s for 60 s (BENCH_FANOUT_RUNS runs)
#   hotroom  5,000 streams in 1 room, 5 posts/s for 60 s
#   single   15,000 streams on one replica (stream cap raised): all open, all receive
#   throughput 64 posters closed loop over 2 replicas and 100 rooms (200
#            streams checking every delivery) for BENCH_SECONDS: durable posts/s
#            and post latency (group commit and coalesced announcements)
#
# The machine may be shared: every report carries the load average at its
# start, once the streams were open, and at its end.
#
# BENCH_PPROF=1 also profiles each run: replica a serves pprof
# (PARLEY_PPROF_ADDR), and once its streams are open its heap, goroutines
# and a ${BENCH_PPROF_SECONDS:-20} s CPU profile go to $BENCH_OUT/NAME.a.*; the load tool
# writes its own CPU profile to NAME.client.cpu (go tool pprof bin/parley-bench ...).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Open files: each stream is a socket in the replica and in the load tool
# (15,000 in the single-replica scenario). Raise the soft limit to the hard
# one (20,000 per process on the development VM); children inherit it.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "bench: open-file limit $(ulimit -n)"

out=${BENCH_OUT:-bench-results}
scenarios=${BENCH_SCENARIOS:-idle fanout hotroom single throughput}
fanout_runs=${BENCH_FANOUT_RUNS:-3}
post_seconds=${BENCH_SECONDS:-60}

# Limits on, raised far above the load (the load tool posts as one user
# per room and opens 25 streams per user). BENCH_STOCK=1 keeps every
# default instead (the single scenario still raises the replica's stream
# cap, which it is about), and BENCH_DATABASE_URL runs against that
# Postgres (e.g. the machine's own, postgres://postgres@127.0.0.1:5432/db)
# rather than a private cluster: the stock-setup check of issue 17.
if [ -z "${BENCH_STOCK:-}" ]; then
	export PARLEY_POST_RATE=1000 PARLEY_POST_BURST=2000
	export PARLEY_STREAMS_PER_USER=1000 PARLEY_MAX_STREAMS=16000
	export PARLEY_LOGIN_FAILURES=1000 PARLEY_LOGIN_FAILURES_PER_USER=10000
fi
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
	export PARLEY_DATABASE_URL=$BENCH_DATABASE_URL
	PARLEY_JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
	export PARLEY_JWT_SECRET
fi

mkdir -p bin "$out"
go build -o bin/parley ./cmd/parley
go build -o bin/parley-bench ./cmd/parley-bench

work=$(mktemp -d /tmp/parley-bench.XXXXXX)
chmod 755 "$work" # the cluster runs as the postgres user when we are root
declare -A pid=()

# start NAME PORT: a replica on the private cluster, waited for until ready.
start() {
	PARLEY_DATA_DIR="$work/data" PARLEY_ADDR="127.0.0.1:$2" PARLEY_PPROF_ADDR="${BENCH_PPROF:+127.0.0.1:$(($2 + 1000))}" \
		bin/parley serve >"$work/$1.log" 2>&1 &
	pid[$1]=$!
	for _ in $(seq 600); do
		if curl -fs "http://127.0.0.1:$2/readyz" >/dev/null 2>&1; then
			return 0
		fi
		if ! kill -0 "${pid[$1]}" 2>/dev/null; then
			echo "bench: replica $1 exited:" >&2
			cat "$work/$1.log" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "bench: replica $1 not ready after 60 s" >&2
	exit 1
}

# stop NAME: SIGTERM, and wait for it to exit.
stop() {
	if [ -n "${pid[$1]:-}" ]; then
		kill -TERM "${pid[$1]}" 2>/dev/null || true
		wait "${pid[$1]}" 2>/dev/null || true
		unset "pid[$1]"
	fi
}

cleanup() {
	stop a
	stop b
	stop setup # last: it owns the Postgres cluster and stops it
	rm -rf "$work"
}
trap cleanup EXIT

# BENCH_PORT moves the three ports (setup, a, b), so two runs on one box
# do not measure each other's replicas.
port=${BENCH_PORT:-18080}
setup_url=http://127.0.0.1:$port
a_url=http://127.0.0.1:$((port + 1))
b_url=http://127.0.0.1:$((port + 2))
start setup "$port"

# fresh: two replicas started anew, so each scenario measures its own heap.
fresh() {
	stop a
	stop b
	start a $((port + 1))
	start b $((port + 2))
}

status=0
# run NAME FLAGS...: one load-tool run, its table on stdout and in $out.
run() {
	local name=$1
	shift
	echo "== $name: $*"
	local prof=() profiler=
	if [ -n "${BENCH_PPROF:-}" ]; then
		prof=(-cpuprofile "$out/$name.client.cpu")
		profile "$name" &
		profiler=$!
	fi
	bin/parley-bench -setup-url "$setup_url" -json-out "$out/$name.json" "${prof[@]}" "$@" | tee "$out/$name.txt" || status=1
	# Only the profiler: a bare wait would wait for the replicas too.
	if [ -n "$profiler" ]; then
		wait "$profiler" || true
	fi
}

# profile NAME: once replica a has streams open (its subscriber count has
# stopped growing), its heap, goroutines and CPU profile.
profile() {
	local base=http://127.0.0.1:$((port + 1001)) last=-1 n
	for _ in $(seq 600); do
		n=$(curl -fs "$a_url/metrics" 2>/dev/null | awk '/^parley_stream_subscribers /{print int($2)}')
		if [ -n "$n" ] && [ "$n" -gt 0 ] && [ "$n" = "$last" ]; then
			break
		fi
		last=${n:--1}
		sleep 1
	done
	curl -fs -o "$out/$1.a.heap" "$base/debug/pprof/heap?gc=1" || true
	curl -fs -o "$out/$1.a.goroutine" "$base/debug/pprof/goroutine" || true
	curl -fs -o "$out/$1.a.cpu" "$base/debug/pprof/profile?seconds=${BENCH_PPROF_SECONDS:-20}" || true
}

{
	echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
	echo "machine $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/^Mem:/ {print $2}') GiB"
	echo "date $(date -u +%FT%TZ), uptime: $(uptime)"
	if [ -n "${BENCH_DATABASE_URL:-}" ]; then
		echo "postgres: BENCH_DATABASE_URL ($(psql "$BENCH_DATABASE_URL" -Atc 'select version()' 2>/dev/null | cut -d, -f1); max_connections $(psql "$BENCH_DATABASE_URL" -Atc 'show max_connections' 2>/dev/null), shared_buffers $(psql "$BENCH_DATABASE_URL" -Atc 'show shared_buffers' 2>/dev/null), fsync $(psql "$BENCH_DATABASE_URL" -Atc 'show fsync' 2>/dev/null)); load client on this machine too"
	else
		echo "postgres: private cluster, fsync on, on this machine; load client on this machine too"
	fi
	if [ -n "${BENCH_STOCK:-}" ]; then
		echo "limits: defaults (BENCH_STOCK)"
	else
		echo "limits: raised (posts 1000/s, 1000 streams per user, 16000 per replica)"
	fi
} | tee "$out/machine.txt"

for s in $scenarios; do
	case $s in
	idle)
		fresh
		run idle -urls "$a_url,$b_url" -pids "${pid[a]},${pid[b]}" \
			-streams 10000 -rooms 100 -settle "${BENCH_SETTLE:-5s}" -rate 10 -duration 10s
		;;
	fanout)
		for i in $(seq "$fanout_runs"); do
			fresh
			run "fanout-$i" -urls "$a_url,$b_url" -pids "${pid[a]},${pid[b]}" \
				-streams 5000 -rooms 100 -rate 200 -duration "${post_seconds}s"
		done
		;;
	hotroom)
		fresh
		run hotroom -urls "$a_url,$b_url" -pids "${pid[a]},${pid[b]}" \
			-streams 5000 -rooms 1 -rate 5 -duration "${post_seconds}s"
		;;
	throughput)
		fresh
		run throughput -urls "$a_url,$b_url" -pids "${pid[a]},${pid[b]}" \
			-streams 200 -rooms 100 -streams-per-user 2 -rate 0 -posters 64 -duration "${post_seconds}s"
		;;
	single)
		PARLEY_MAX_STREAMS=16000 fresh
		run single -urls "$a_url" -pids "${pid[a]}" \
			-streams 15000 -rooms 100 -settle 5s -rate 10 -duration 10s
		;;
	*)
		echo "bench: unknown scenario $s (idle fanout hotroom single throughput)" >&2
		exit 2
		;;
	esac
done
exit $status
