#!/bin/sh
# obskit gateway: keep the access log's syslog target (the collector) resolvable.
#
# nginx resolves `access_log syslog:server=NAME` once, when it loads its config: it refuses
# to start while NAME does not resolve yet (`host not found in syslog server`, e.g. while
# ECS still starts the collector), and after the collector is replaced it keeps sending to
# the old address. So, before nginx starts, wait (bounded) until the name resolves; then
# watch it and reload nginx (which resolves it again) whenever its address changes.
# An IP address (the process runtime's 127.0.0.1) needs neither.
set -eu

target="${OBSKIT_GW_LOG_SYSLOG:?OBSKIT_GW_LOG_SYSLOG is not set}"
host="${target%:*}"
case "$host" in
    *[!0-9.]*) ;;
    *) exit 0 ;;
esac

wait_s="${OBSKIT_GW_SYSLOG_WAIT:-120}"
every="${OBSKIT_GW_SYSLOG_RECHECK:-10}"
conf="${OBSKIT_GW_CONF_DIR:-/etc/nginx/obskit}/nginx.conf"

lookup() { getent hosts "$host" 2>/dev/null | awk '{ print $1; exit }'; }

waited=0
addr="$(lookup || true)"
while [ -z "$addr" ]; do
    if [ "$waited" -ge "$wait_s" ]; then
        echo "obskit: the access log's syslog target $host does not resolve after ${wait_s}s" >&2
        exit 1
    fi
    sleep 1
    waited=$((waited + 1))
    addr="$(lookup || true)"
done

(
    while sleep "$every"; do
        now="$(lookup || true)"
        if [ -n "$now" ] && [ "$now" != "$addr" ]; then
            echo "obskit: $host moved from $addr to $now: reloading nginx" >&2
            addr="$now"
            nginx -c "$conf" -s reload || true
        fi
    done
) </dev/null >/dev/null 2>&1 &
exit 0
