#!/usr/bin/env bash
# Healthy when redis-server, PID 1, answers PING on the TCP port it listens on. The port comes
# from the kernel's socket table (the server may have been given --port or a config file), so
# the check needs no copy of the server's arguments.
set -euo pipefail
[[ $(cat /proc/1/comm) == redis-server ]] || exit 1

# Only the server's own user may read where its file descriptors lead: become that user.
server_uid=$(awk '$1 == "Uid:" { print $2 }' /proc/1/status)
if [[ $(id -u) != "$server_uid" ]]; then
    server_gid=$(awk '$1 == "Gid:" { print $2 }' /proc/1/status)
    exec setpriv --reuid="$server_uid" --regid="$server_gid" --clear-groups "${BASH_SOURCE[0]}"
fi

declare -A server_sockets=()
for fd in /proc/1/fd/*; do
    target=$(readlink "$fd") || continue
    if [[ $target =~ ^socket:\[([0-9]+)\]$ ]]; then
        server_sockets[${BASH_REMATCH[1]}]=1
    fi
done

# /proc/net/tcp and tcp6: field 2 is HEXADDRESS:HEXPORT, field 4 the state (0A: listening),
# field 10 the socket's inode.
port=
while read -r _ local_address _ state _ _ _ _ _ inode _; do
    if [[ $state == 0A && -n ${server_sockets[$inode]:-} ]]; then
        port=$((16#${local_address##*:}))
        break
    fi
done < <(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null || true)
[[ -n $port ]] || exit 1

# A server that requires a password answers NOAUTH: it is up all the same.
reply=$(redis-cli -h 127.0.0.1 -p "$port" ping 2>&1) || exit 1
[[ $reply == PONG || $reply == *NOAUTH* ]]
