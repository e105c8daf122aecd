#!/bin/sh
# obskit grafana: add the gateway's CA to the certificates Grafana's own HTTP clients trust,
# then run the given command (the image's /run.sh; the process runtime: grafana server).
#
# Grafana's datasources carry the CA in their provisioning (tlsCACert), but its alert state
# history client (Loki, through the gateway) has no CA setting: it trusts the system's. Go
# reads SSL_CERT_DIR in addition to the system's bundle file, so the public CAs that webhook
# and e-mail contact points need stay trusted. The CA is public; it arrives as
# OBSKIT_GATEWAY_CA_PEM (from the secret store, or SSM on ECS) and is written under Grafana's
# data folder, the one place every runtime gives it to write (a read-only root file system
# included).
set -eu
dir="${GF_PATHS_DATA:?GF_PATHS_DATA is not set}/obskit-ca"
mkdir -p "$dir"
umask 022
printf '%s\n' "${OBSKIT_GATEWAY_CA_PEM:?OBSKIT_GATEWAY_CA_PEM is not set}" > "$dir/gateway-ca.pem.tmp"
mv -f "$dir/gateway-ca.pem.tmp" "$dir/gateway-ca.pem"
SSL_CERT_DIR="$dir"
export SSL_CERT_DIR
exec "$@"
