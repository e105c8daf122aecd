#!/bin/sh
# The minio stand-in's entrypoint, written for obskit from the behaviour of the official
# image's dockerscripts/docker-entrypoint.sh (see CONTRACT.md):
# - arguments that do not start with `minio` are minio's: `server /data` runs `minio server /data`;
# - no arguments at all run the image's CMD (`minio`);
# - the deprecated user switch: with MINIO_USERNAME and MINIO_GROUPNAME set, run as that
#   user (MINIO_UID/MINIO_GID when given, else a new user 1000:1000); otherwise exec as root.
if [ "${1:-}" != "minio" ] && [ -n "${1:-}" ]; then
    set -- minio "$@"
fi
if [ -n "${MINIO_USERNAME:-}" ] && [ -n "${MINIO_GROUPNAME:-}" ]; then
    if [ -n "${MINIO_UID:-}" ] && [ -n "${MINIO_GID:-}" ]; then
        exec chroot --userspec="$MINIO_UID:$MINIO_GID" / "$@"
    fi
    echo "$MINIO_USERNAME:x:1000:1000:$MINIO_USERNAME:/:/sbin/nologin" >> /etc/passwd
    echo "$MINIO_GROUPNAME:x:1000" >> /etc/group
    exec chroot --userspec="$MINIO_USERNAME:$MINIO_GROUPNAME" / "$@"
fi
exec "$@"
