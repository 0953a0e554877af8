#!/usr/bin/env bash
# Starts redis-server the way the official `redis` image does: `redis-server ARGS` (or only
# ARGS, or a config file) runs the server as the redis user in /data, which is handed to that
# user first when the container starts as root. Other commands (redis-cli, sh) run as given.
# The server replaces this script (exec), so it gets docker's signals.
set -Eeuo pipefail

if [[ $# -eq 0 || $1 == -* || $1 == *.conf ]]; then
    set -- redis-server "$@"
fi
if [[ $1 == redis-server && $(id -u) == 0 ]]; then
    find /data ! -user redis -exec chown redis:redis {} +
    exec setpriv --reuid=redis --regid=redis --init-groups "${BASH_SOURCE[0]}" "$@"
fi
if [[ $1 == redis-server && $(umask) == 0022 ]]; then
    # The snapshot and the append-only file are for the server alone.
    umask 0077
fi
exec "$@"
