#!/usr/bin/env bash
# Healthy when the server that runs as PID 1 (not the temporary one of the first
# initialisation) answers `mariadb-admin ping` on its socket. The ping logs in as the
# operating system's mysql user (account mysql@localhost, identified via unix_socket, no
# privileges), so that health checks leave no "access denied" lines in the server's log.
set -euo pipefail
case $(cat /proc/1/comm) in
mariadbd | mysqld) ;;
*) exit 1 ;;
esac
exec setpriv --reuid=mysql --regid=mysql --init-groups \
    mariadb-admin --no-defaults --protocol=socket --socket=/run/mysqld/mysqld.sock --user=mysql --connect-timeout=3 ping --silent
