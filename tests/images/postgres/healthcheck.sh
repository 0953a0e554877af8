#!/usr/bin/env bash
# Healthy when the server that runs as PID 1 (not the temporary one of the first
# initialisation) accepts connections on the port and socket directory it wrote down.
set -euo pipefail
[[ $(cat /proc/1/comm) == postgres ]] || exit 1
pid_file=${PGDATA:-/var/lib/postgresql/data}/postmaster.pid
# postmaster.pid: line 4 holds the port, line 5 the first socket directory.
port=$(sed -n 4p "$pid_file")
socket_dir=$(sed -n 5p "$pid_file")
exec pg_isready --quiet --host "${socket_dir:-/var/run/postgresql}" --port "$port" --username "${POSTGRES_USER:-postgres}"
