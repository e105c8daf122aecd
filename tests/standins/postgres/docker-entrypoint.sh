#!/bin/sh
# obskit's stand-in for the postgres image's entrypoint: the same rules (CONTRACT.md).
set -eu

if [ "${1#-}" != "$1" ]; then set -- postgres "$@"; fi

if [ "$1" = "postgres" ]; then
    if [ "$(id -u)" = "0" ]; then
        mkdir -p "$PGDATA"
        chown -R postgres:postgres "$PGDATA" /var/run/postgresql
        chmod 0700 "$PGDATA"
        exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
    fi
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != "trust" ]; then
            echo "Error: Database is uninitialized and superuser password is not specified." >&2
            echo "       You must specify POSTGRES_PASSWORD to a non-empty value for the" >&2
            echo "       superuser. For example, \"-e POSTGRES_PASSWORD=password\" on \"docker run\"." >&2
            exit 1
        fi
        user="${POSTGRES_USER:-postgres}"
        db="${POSTGRES_DB:-$user}"
        pwfile="$(mktemp)"
        printf '%s\n' "${POSTGRES_PASSWORD:-}" > "$pwfile"
        initdb --username="$user" --pwfile="$pwfile" -D "$PGDATA" ${POSTGRES_INITDB_ARGS:-} >/dev/null
        rm -f "$pwfile"
        printf '\nhost all all all %s\n' "${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" >> "$PGDATA/pg_hba.conf"
        # A temporary server on the socket only, for the database and the init scripts.
        pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
        if [ "$db" != "postgres" ]; then
            psql -v ON_ERROR_STOP=1 --username "$user" --dbname postgres -q \
                -c "CREATE DATABASE \"$db\"" >/dev/null
        fi
        for f in /docker-entrypoint-initdb.d/*; do
            case "$f" in
                *.sh) [ -x "$f" ] && "$f" || . "$f" ;;
                *.sql) psql -v ON_ERROR_STOP=1 --username "$user" --dbname "$db" -q -f "$f" ;;
                *) ;;
            esac
        done
        pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
        echo "PostgreSQL init process complete; ready for start up."
    fi
    set -- "$@" -c listen_addresses='*'
fi

exec "$@"
