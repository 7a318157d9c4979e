#!/usr/bin/env bash
# The ceiling of Parley's post transaction on a Postgres server, measured
# with pgbench: the statements PostMessage sends (write-limit charge, BEGIN,
# room lock, lookups, the append, COMMIT) in one pipeline, with and without
# pg_notify, at 16 and 64 clients.
#
#   scripts/pgbench/run.sh postgres://postgres@127.0.0.1:5432/scratch
#
# The database must be a scratch one, migrated (parley migrate up): the
# fixture adds 100 rooms with one poster each, and the runs append to them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
url=${1:?usage: run.sh DATABASE_URL}
secs=${PGBENCH_SECONDS:-20}
psql -q "$url" -f setup.sql
echo "uptime: $(uptime)"
for script in post-plain post-notify; do
	for c in ${PGBENCH_CLIENTS:-16 64}; do
		printf '%s, %s clients: ' "$script" "$c"
		pgbench -n -M extended -c "$c" -j 2 -T "$secs" -f "$script.sql" "$url" 2>&1 |
			awk '/^latency average/ {lat=$4} /^tps/ {tps=$3} END {printf "%.0f tps, latency avg %s ms\n", tps, lat}'
	done
done
echo "uptime: $(uptime)"
