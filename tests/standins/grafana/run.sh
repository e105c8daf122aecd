#!/bin/bash -e
# obskit's stand-in for the grafana image's /run.sh: the same paths and the same
# GF_PATHS_* variables (CONTRACT.md), then the server in the foreground.
if [ ! -r "$GF_PATHS_CONFIG" ]; then
    echo "GF_PATHS_CONFIG='$GF_PATHS_CONFIG' is not readable." >&2
    exit 1
fi
if [ ! -w "$GF_PATHS_DATA" ]; then
    echo "GF_PATHS_DATA='$GF_PATHS_DATA' is not writable." >&2
    exit 1
fi
if [ ! -r "$GF_PATHS_HOME" ]; then
    echo "GF_PATHS_HOME='$GF_PATHS_HOME' is not readable." >&2
    exit 1
fi
exec grafana server \
    --homepath="$GF_PATHS_HOME" \
    --config="$GF_PATHS_CONFIG" \
    --packaging=docker \
    "$@" \
    cfg:default.log.mode="console" \
    cfg:default.paths.data="$GF_PATHS_DATA" \
    cfg:default.paths.logs="$GF_PATHS_LOGS" \
    cfg:default.paths.plugins="$GF_PATHS_PLUGINS" \
    cfg:default.paths.provisioning="$GF_PATHS_PROVISIONING"
