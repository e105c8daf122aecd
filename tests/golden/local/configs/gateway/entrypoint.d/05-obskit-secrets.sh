#!/bin/sh
# obskit gateway: write the TLS key pair and the htpasswd file from secrets passed as
# environment variables, before nginx starts. The same script runs in compose (mounted
# into /docker-entrypoint.d), in ECS, and in obskit's loopback tests.
set -eu

dir="${OBSKIT_GW_SECRETS_DIR:?OBSKIT_GW_SECRETS_DIR is not set}"
: "${OBSKIT_GW_TLS_CERT_PEM:?OBSKIT_GW_TLS_CERT_PEM is not set}"
: "${OBSKIT_GW_TLS_KEY_PEM:?OBSKIT_GW_TLS_KEY_PEM is not set}"
: "${OBSKIT_GW_HTPASSWD:?OBSKIT_GW_HTPASSWD is not set}"

umask 077
mkdir -p "$dir" "${OBSKIT_GW_TEMP_DIR:?OBSKIT_GW_TEMP_DIR is not set}"
printf '%s\n' "$OBSKIT_GW_TLS_CERT_PEM" > "$dir/tls.crt"
printf '%s\n' "$OBSKIT_GW_TLS_KEY_PEM" > "$dir/tls.key"
printf '%s\n' "$OBSKIT_GW_HTPASSWD" > "$dir/htpasswd"

# nginx workers read htpasswd on every request: hand it to the worker user only, and let
# the worker's group into the folder (search only: it cannot list it). The folder may be a
# root-owned 0700 mount (compose's tmpfs, ECS task storage): without this the workers get
# "Permission denied" and every authenticated request a 500.
worker="${OBSKIT_GW_USER%% *}"
if [ "$(id -u)" = "0" ] && [ -n "$worker" ] && id "$worker" >/dev/null 2>&1; then
    chown "$worker" "$dir/htpasswd"
    chgrp "$(id -g "$worker")" "$dir"
    chmod 0710 "$dir"
fi
chmod 0400 "$dir/tls.key" "$dir/htpasswd"
chmod 0444 "$dir/tls.crt"
