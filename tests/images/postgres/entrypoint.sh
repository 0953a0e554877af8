#!/usr/bin/env bash
# Starts PostgreSQL 15 the way the official `postgres` image documents it:
#   POSTGRES_PASSWORD (required unless POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_USER
#   (default postgres), POSTGRES_DB (default: the user's name), PGDATA, POSTGRES_INITDB_ARGS,
#   POSTGRES_HOST_AUTH_METHOD, and *.sh / *.sql / *.sql.gz in /docker-entrypoint-initdb.d,
#   run once, when PGDATA is initialised. Arguments go to `postgres` (`-c port=5433`), PGPORT
#   selects the port too. The server replaces this script (exec), so it gets docker's signals.
set -Eeuo pipefail

INITDB_DIR=/docker-entrypoint-initdb.d
SOCKET_DIR=/var/run/postgresql
export PGDATA=${PGDATA:-/var/lib/postgresql/data}

say() { printf 'entrypoint: %s\n' "$*"; }
fail() {
    printf 'entrypoint: error: %s\n' "$*" >&2
    exit 1
}

# Options that only print something: no initialisation for them.
only_prints() {
    local arg
    for arg; do
        case $arg in
        -'?' | --help | -V | --version | -C | --describe-config) return 0 ;;
        esac
    done
    return 1
}

# As root: give the data and socket directories to postgres, then run this script again as
# postgres (setpriv from util-linux; no setuid helper needed).
become_postgres() {
    mkdir -p "$PGDATA" "$SOCKET_DIR"
    find "$PGDATA" ! -user postgres -exec chown postgres:postgres {} +
    chmod 700 "$PGDATA"
    chown postgres:postgres "$SOCKET_DIR"
    chmod 3777 "$SOCKET_DIR"
    exec setpriv --reuid=postgres --regid=postgres --init-groups \
        env HOME=/var/lib/postgresql "${BASH_SOURCE[0]}" "$@"
}

check_settings() {
    POSTGRES_USER=${POSTGRES_USER:-postgres}
    POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
    HOST_AUTH_METHOD=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
    if [[ -z ${POSTGRES_PASSWORD:-} && $HOST_AUTH_METHOD != trust ]]; then
        fail "POSTGRES_PASSWORD is not set, so the superuser '$POSTGRES_USER' would have no password" \
            "and no client could log in over the network. Set POSTGRES_PASSWORD, or set" \
            "POSTGRES_HOST_AUTH_METHOD=trust to let every client in without a password (tests only)."
    fi
    if [[ -n $(ls -A "$PGDATA") ]]; then
        fail "PGDATA ($PGDATA) is not empty but holds no database cluster (no PG_VERSION)." \
            "Empty it, or set PGDATA to a new subdirectory of the volume (e.g. $PGDATA/pgdata)."
    fi
}

run_initdb() {
    local extra_args=()
    read -r -a extra_args <<<"${POSTGRES_INITDB_ARGS:-}"
    # Local (socket) connections inside the container are trusted, as in the official image; TCP
    # connections, 127.0.0.1 included (these containers may share the host's network), use the
    # host method. Arguments from POSTGRES_INITDB_ARGS come last, so they win.
    local args=(--username="$POSTGRES_USER" --auth-local=trust --auth-host="$HOST_AUTH_METHOD")
    if [[ -n ${POSTGRES_PASSWORD:-} ]]; then
        initdb "${args[@]}" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") "${extra_args[@]}"
    else
        initdb "${args[@]}" "${extra_args[@]}"
    fi
    printf '\n# Added by the entrypoint: clients on any address, with the host method.\nhost all all all %s\n' \
        "$HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
}

init_psql() { psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --username "$POSTGRES_USER" "$@"; }

run_init_scripts() {
    local script
    for script in "$INITDB_DIR"/*; do
        [[ -e $script ]] || continue
        case $script in
        *.sh)
            if [[ -x $script ]]; then
                say "running $script"
                "$script"
            else
                say "sourcing $script"
                # shellcheck disable=SC1090
                . "$script"
            fi
            ;;
        *.sql)
            say "running $script"
            init_psql --dbname "$POSTGRES_DB" -f "$script"
            ;;
        *.sql.gz)
            say "running $script"
            gzip -dc "$script" | init_psql --dbname "$POSTGRES_DB"
            ;;
        *) say "ignoring $script (not *.sh, *.sql or *.sql.gz)" ;;
        esac
    done
}

# First start on an empty PGDATA: initdb, then a temporary server reachable only through the
# socket creates the database and runs the init scripts; it is stopped before the real start.
initialise() {
    mkdir -p "$PGDATA"
    check_settings
    say "initialising a PostgreSQL 15 cluster in $PGDATA"
    run_initdb
    export PGHOST=$SOCKET_DIR PGPORT=${PGPORT:-5432}
    pg_ctl -D "$PGDATA" -w -t 120 -o "-c listen_addresses='' -p $PGPORT" start
    init_psql --dbname postgres --set db="$POSTGRES_DB" <<'SQL'
SELECT format('CREATE DATABASE %I', :'db')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
    run_init_scripts
    pg_ctl -D "$PGDATA" -m fast -w -t 120 stop
    unset PGHOST
    say "initialisation complete"
}

main() {
    if [[ $# -eq 0 || $1 == -* ]]; then
        set -- postgres "$@"
    fi
    if [[ $1 != postgres ]] || only_prints "$@"; then
        exec "$@"
    fi
    if [[ $(id -u) == 0 ]]; then
        become_postgres "$@"
    fi
    if [[ ! -s $PGDATA/PG_VERSION ]]; then
        initialise
    fi
    exec "$@"
}

main "$@"
