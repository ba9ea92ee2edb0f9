#!/bin/sh
# The compose broker's start: refuses placeholder passwords, writes the password file from the environment
# (one user per service, the device users, the operator and a random health-check user) readable by the
# user Mosquitto runs as, turns the TLS listener on when certificates are mounted, then starts Mosquitto.
# Paths can be moved (MOSQUITTO_*) so tests run this very script against a local Mosquitto.
set -eu
conf=${MOSQUITTO_CONF:-/mosquitto/config/mosquitto.conf}
data=${MOSQUITTO_DATA:-/mosquitto/data}
certs=${MOSQUITTO_CERTS:-/mosquitto/certs}
run_as=${MOSQUITTO_USER:-mosquitto}
tls_listener=${MOSQUITTO_TLS_LISTENER:-8883}

fail() {
  echo "init: $*" >&2
  exit 1
}

# user:VARIABLE for every user of the generated ACL (shared/acl.py) but the health check
users="allocator:ALLOCATOR_PASSWORD ocpp-gateway:OCPP_GATEWAY_PASSWORD meter-bridge:METER_BRIDGE_PASSWORD
load-adapters:LOAD_ADAPTERS_PASSWORD operator:OPERATOR_PASSWORD meters:METERS_PASSWORD devices:DEVICES_PASSWORD"

for pair in $users; do
  var=${pair#*:}
  eval "value=\${$var:-}"
  case "$value" in
    "" | change-me*)
      fail "$var is empty or still a change-me placeholder. Copy .env.example to .env beside" \
        "docker-compose.yml, give every *_PASSWORD a password of your own, and run 'docker compose up -d' again." ;;
  esac
done

mkdir -p "$data/conf.d"
passwd="$data/passwd"
umask 077
: > "$passwd.new"
for pair in $users; do
  var=${pair#*:}
  eval "value=\${$var}"
  mosquitto_passwd -b "$passwd.new" "${pair%%:*}" "$value"
done
# A new random password for the health check at every start (docker-compose.yml reads it from the file).
health=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
mosquitto_passwd -b "$passwd.new" healthcheck "$health"
printf '%s' "$health" > "$data/healthcheck"
mv "$passwd.new" "$passwd"

# TLS on 8883 when the user mounted a server certificate and key (docs/deploy.md); a client certificate is
# required when MQTT_TLS_REQUIRE_CLIENT_CERT=true (it is checked against ca.crt).
tls="$data/conf.d/tls.conf"
rm -f "$tls"
if [ -f "$certs/server.crt" ] && [ -f "$certs/server.key" ]; then
  mkdir -p "$data/tls"
  cp "$certs/server.crt" "$certs/server.key" "$data/tls/"
  {
    echo "listener $tls_listener"
    echo "certfile $data/tls/server.crt"
    echo "keyfile $data/tls/server.key"
    if [ -f "$certs/ca.crt" ]; then
      cp "$certs/ca.crt" "$data/tls/"
      echo "cafile $data/tls/ca.crt"
    fi
    if [ "${MQTT_TLS_REQUIRE_CLIENT_CERT:-false}" = true ]; then
      [ -f "$certs/ca.crt" ] || fail "MQTT_TLS_REQUIRE_CLIENT_CERT=true needs ca.crt (the CA of the client certificates) in $certs"
      echo "require_certificate true"
    fi
  } > "$tls"
  echo "init: TLS listener on 8883 with $certs/server.crt"
fi

# Mosquitto drops root for $run_as before it reads the password file: give that user its files.
if [ "$(id -u)" = 0 ]; then
  chown -R "$run_as" "$data"
fi
chmod 0644 "$tls" 2>/dev/null || true
exec mosquitto -c "$conf"
