#!/usr/bin/env bash
# Starts MariaDB 10.11 the way the official `mariadb` image documents it. Each setting is read
# from MARIADB_<NAME>, or else MYSQL_<NAME>: ROOT_PASSWORD, ALLOW_EMPTY_ROOT_PASSWORD,
# RANDOM_ROOT_PASSWORD (one of the three is required), DATABASE, USER and PASSWORD; *.sh,
# *.sql and *.sql.gz in /docker-entrypoint-initdb.d run once, when the data directory is
# initialised (`mariadb` reaches the server there as root through the socket, without a
# password). Arguments go to mariadbd (`--port=3307`); the server replaces this script (exec),
# so it gets docker's signals.
set -Eeuo pipefail

INITDB_DIR=/docker-entrypoint-initdb.d
SOCKET=/run/mysqld/mysqld.sock

say() { printf 'entrypoint: %s\n' "$*"; }
fail() {
    printf 'entrypoint: error: %s\n' "$*" >&2
    exit 1
}

# setting NAME: MARIADB_NAME, or MYSQL_NAME when that is unset; both set and different fails.
setting() {
    local mariadb_name=MARIADB_$1 mysql_name=MYSQL_$1
    if [[ -n ${!mariadb_name:-} && -n ${!mysql_name:-} && ${!mariadb_name} != "${!mysql_name}" ]]; then
        fail "$mariadb_name and $mysql_name are both set, to different values: set only one of them."
    fi
    printf '%s' "${!mariadb_name:-${!mysql_name:-}}"
}

# A string literal and an identifier for SQL; grant_name also escapes the LIKE wildcards
# that GRANT ... ON `db`.* would otherwise expand.
sql_string() {
    local text=${1//\\/\\\\}
    printf "'%s'" "${text//\'/\\\'}"
}
sql_name() { printf "\`%s\`" "${1//\`/\`\`}"; }
grant_name() {
    local text=${1//\\/\\\\}
    text=${text//_/\\_}
    sql_name "${text//%/\\%}"
}

# server_variable NAME ARGS...: the value mariadbd would use, given its option files and ARGS.
server_variable() {
    local name=$1
    shift
    "$@" --verbose --help 2>/dev/null | awk -v name="$name" '$1 == name { print $2; exit }'
}

become_mysql() {
    mkdir -p "$DATADIR" /run/mysqld
    find "$DATADIR" ! -user mysql -exec chown mysql:mysql {} +
    chown mysql:mysql /run/mysqld
    exec setpriv --reuid=mysql --regid=mysql --init-groups "${BASH_SOURCE[0]}" "$@"
}

check_settings() {
    ROOT_PASSWORD=$(setting ROOT_PASSWORD)
    ALLOW_EMPTY=$(setting ALLOW_EMPTY_ROOT_PASSWORD)
    RANDOM_ROOT=$(setting RANDOM_ROOT_PASSWORD)
    DATABASE=$(setting DATABASE)
    APP_USER=$(setting USER)
    APP_PASSWORD=$(setting PASSWORD)
    if [[ -z $ROOT_PASSWORD && -z $ALLOW_EMPTY && -z $RANDOM_ROOT ]]; then
        fail "no root password is given for the new database in $DATADIR. Set MARIADB_ROOT_PASSWORD" \
            "(or MYSQL_ROOT_PASSWORD), MARIADB_RANDOM_ROOT_PASSWORD=yes, or" \
            "MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=yes (tests only)."
    fi
    if [[ $APP_USER == root ]]; then
        fail "MARIADB_USER=root: root is created anyway; set MARIADB_ROOT_PASSWORD for it and" \
            "give MARIADB_USER another name."
    fi
    if [[ -n $APP_USER && -z $APP_PASSWORD ]]; then
        fail "MARIADB_USER ($APP_USER) is set without MARIADB_PASSWORD: set a password for it."
    fi
    if [[ -n $RANDOM_ROOT && -z $ROOT_PASSWORD ]]; then
        ROOT_PASSWORD=$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32 || true)
        say "GENERATED ROOT PASSWORD: $ROOT_PASSWORD"
    fi
}

init_sql() { mariadb --protocol=socket --socket="$SOCKET" --user=root "$@"; }

# Runs against the temporary server: drops the root accounts other than root@localhost that
# mariadb-install-db made, creates root@'%', mysql@localhost (socket login, no privileges),
# the database and the user.
setup_sql() {
    local host
    printf 'SET SESSION sql_log_bin = 0;\n'
    while IFS= read -r host; do
        printf 'DROP USER IF EXISTS root@%s;\n' "$(sql_string "$host")"
    done < <(init_sql --batch --skip-column-names -e "SELECT Host FROM mysql.user WHERE User = 'root' AND Host <> 'localhost'")
    printf "CREATE USER 'root'@'%%';\n"
    printf "GRANT ALL ON *.* TO 'root'@'%%' WITH GRANT OPTION;\n"
    # The health check logs in as the operating system's mysql user; it may do nothing else.
    printf "CREATE USER 'mysql'@'localhost' IDENTIFIED VIA unix_socket;\n"
    if [[ -n $DATABASE ]]; then
        printf 'CREATE DATABASE IF NOT EXISTS %s;\n' "$(sql_name "$DATABASE")"
    fi
    if [[ -n $APP_USER ]]; then
        printf "CREATE USER %s@'%%' IDENTIFIED BY %s;\n" "$(sql_string "$APP_USER")" "$(sql_string "$APP_PASSWORD")"
        if [[ -n $DATABASE ]]; then
            printf "GRANT ALL ON %s.* TO %s@'%%';\n" "$(grant_name "$DATABASE")" "$(sql_string "$APP_USER")"
        fi
    fi
}

run_init_scripts() {
    local script database_args=()
    [[ -z $DATABASE ]] || database_args=(--database="$DATABASE")
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
            init_sql "${database_args[@]}" <"$script"
            ;;
        *.sql.gz)
            say "running $script"
            gzip -dc "$script" | init_sql "${database_args[@]}"
            ;;
        *) say "ignoring $script (not *.sh, *.sql or *.sql.gz)" ;;
        esac
    done
}

# First start on an empty data directory: mariadb-install-db, then a temporary server that
# listens only on the socket creates accounts and the database and runs the init scripts.
# Root gets its password last, in the same session that shuts the temporary server down.
initialise() {
    check_settings
    if [[ -n $(ls -A "$DATADIR") ]]; then
        fail "the data directory $DATADIR is not empty but holds no database (no mysql/ directory)." \
            "Empty it, or mount an empty volume there."
    fi
    say "initialising a MariaDB data directory in $DATADIR"
    mariadb-install-db --datadir="$DATADIR" --auth-root-authentication-method=normal \
        --skip-test-db --skip-name-resolve --cross-bootstrap "${@:2}"
    "$@" --skip-networking --socket="$SOCKET" --skip-log-bin --loose-wsrep-on=OFF &
    local server_pid=$! waited
    for ((waited = 0; ; waited++)); do
        kill -0 "$server_pid" 2>/dev/null || fail "the temporary server for initialisation exited (see its log above)."
        init_sql --connect-timeout=2 -e 'SELECT 1' >/dev/null 2>&1 && break
        ((waited < 120)) || fail "the temporary server did not answer on $SOCKET within 60 s."
        sleep 0.5
    done
    setup_sql | init_sql
    run_init_scripts
    {
        printf 'SET SESSION sql_log_bin = 0;\n'
        printf "ALTER USER 'root'@'localhost' IDENTIFIED BY %s;\n" "$(sql_string "$ROOT_PASSWORD")"
        printf "ALTER USER 'root'@'%%' IDENTIFIED BY %s;\n" "$(sql_string "$ROOT_PASSWORD")"
        printf 'SHUTDOWN;\n'
    } | init_sql
    wait "$server_pid" || fail "the temporary server did not shut down cleanly."
    say "initialisation complete"
}

main() {
    if [[ $# -eq 0 || $1 == -* ]]; then
        set -- mariadbd "$@"
    fi
    case $1 in
    mariadbd | mysqld) ;;
    *) exec "$@" ;;
    esac
    DATADIR=$(server_variable datadir "$@")
    [[ -n $DATADIR ]] || fail "mariadbd refused its options: try '$* --verbose --help' to see why."
    DATADIR=${DATADIR%/}
    if [[ $(id -u) == 0 ]]; then
        become_mysql "$@"
    fi
    if [[ ! -d $DATADIR/mysql ]]; then
        initialise "$@"
    fi
    exec "$@"
}

main "$@"
