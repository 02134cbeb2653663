#!/usr/bin/env bash
# Makes sure the peers Weir's tests talk to are present: Debian packages of
# implementations nobody here wrote, and this machine's services. Installs
# what is missing; starts a service that is installed but not answering.
set -euo pipefail

need_apt=()
# pymodbus's server imports serial_asyncio, which Debian's package only
# recommends (and --no-install-recommends leaves out).
/usr/bin/python3 -c 'import pymodbus' 2>/dev/null || need_apt+=(python3-pymodbus)
/usr/bin/python3 -c 'import serial_asyncio' 2>/dev/null || need_apt+=(python3-serial-asyncio)
command -v mosquitto_sub >/dev/null 2>&1 || need_apt+=(mosquitto-clients)
# The web UI's browser tests (ui/uitest) drive Debian's headless Chromium.
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test-peers: installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# npm peers: node-opcua (OPC UA interop) and, when present, sparkplug-payload.
for script in sources/opcua/testdata/nodeopcua/install.sh sinks/sparkplug/testdata/npm/install.sh; do
  dir=$(dirname "$script")
  if [ -x "$script" ] || [ -f "$script" ]; then
    if [ ! -d "$dir/node_modules" ]; then
      echo "test-peers: npm install in $dir"
      sh "$script" >/dev/null
    fi
  fi
done

answers() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

ensure() { # name port start-command...
  local name=$1 port=$2; shift 2
  if answers "$port"; then return 0; fi
  echo "test-peers: $name is not answering on $port; starting it"
  "$@" || true
  for _ in $(seq 1 50); do answers "$port" && return 0; sleep 0.2; done
  echo "test-peers: $name did not come up on port $port" >&2
  return 1
}

if ! answers 1883; then
  command -v mosquitto >/dev/null 2>&1 || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null; }
fi
ensure mosquitto 1883 mosquitto -d -c /etc/mosquitto/mosquitto.conf
ensure nats-server 4222 start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
  -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
ensure postgresql 5432 bash -c 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'
echo "test-peers: ok (pymodbus $(/usr/bin/python3 -c 'import pymodbus; print(pymodbus.__version__)'), mosquitto 1883, nats 4222, postgresql 5432, $(/usr/bin/chromium --version 2>/dev/null | head -1))"
