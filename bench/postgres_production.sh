#!/usr/bin/env bash
# Gives the local PostgreSQL a production configuration for this machine class (2 cores,
# 24 GiB, SSD) before the benchmarks, and `--reset` puts Debian's defaults back.
#
# Debian's defaults (128 MB of shared buffers, a checkpoint every 1 GB of WAL) suit a laptop
# sharing its memory: with them, a 10 M-event database does not fit in PostgreSQL's cache and
# the checkpoint after a bulk load stalls every writer for seconds. The figures follow the
# PostgreSQL manual's "Resource Consumption" and "WAL Configuration" advice: shared_buffers at
# a quarter of RAM, effective_cache_size at three quarters, checkpoints spread over 15 minutes.
# Durability is untouched (fsync and synchronous_commit stay on).
set -euo pipefail
PSQL=(psql -h 127.0.0.1 -U postgres -d postgres -qAt)
SETTINGS=(
  "shared_buffers=6GB"
  "effective_cache_size=18GB"
  "work_mem=16MB"
  "maintenance_work_mem=1GB"
  "max_wal_size=8GB"
  "min_wal_size=1GB"
  "checkpoint_timeout=15min"
  "checkpoint_completion_target=0.9"
  "wal_buffers=64MB"
  "wal_compression=on"
  "random_page_cost=1.1"
  "effective_io_concurrency=200"
)
if [ "${1:-}" = "--reset" ]; then
  for s in "${SETTINGS[@]}"; do "${PSQL[@]}" -c "ALTER SYSTEM RESET ${s%%=*}"; done
else
  for s in "${SETTINGS[@]}"; do "${PSQL[@]}" -c "ALTER SYSTEM SET ${s%%=*} = '${s#*=}'"; done
fi
pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main restart
for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
"${PSQL[@]}" -c "SELECT name || ' = ' || setting || coalesce(' ' || unit, '') FROM pg_settings
  WHERE name IN ('shared_buffers', 'effective_cache_size', 'work_mem', 'max_wal_size',
                 'checkpoint_timeout', 'random_page_cost') ORDER BY name"
