#!/bin/sh
# Writes the password file from the environment (one user per service), then starts Mosquitto.
set -eu
passwd=/mosquitto/data/passwd
: > "$passwd"
for pair in "allocator:$ALLOCATOR_PASSWORD" "ocpp-gateway:$OCPP_GATEWAY_PASSWORD" \
            "meter-bridge:$METER_BRIDGE_PASSWORD" "load-adapters:$LOAD_ADAPTERS_PASSWORD" \
            "operator:$OPERATOR_PASSWORD"; do
  mosquitto_passwd -b "$passwd" "${pair%%:*}" "${pair#*:}"
done
chmod 0700 "$passwd"
exec mosquitto -c /mosquitto/config/mosquitto.conf
