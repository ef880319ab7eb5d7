#!/usr/bin/env bash
# The Debian package, as a school installs it: builds it with cargo-deb (a release build,
# several minutes), installs it on this machine with `apt-get install ./shouwang-relay_*.deb`,
# checks the files, the user, the directories and the unit, then, as the service's user and
# inside a private network namespace (a veth pair holding 10.203.0.1/24; nothing leaves this
# machine), sets up a school on that LAN address, serves, answers /health, invites and backs
# up. Removes the package again (purge) and the directories a purge keeps.
#
# Needs root and apt-get. Refuses to run where shouwang-relay (or its user or directories)
# already exists: it would replace a real installation. Run by `scripts/test.sh` (with
# SHOUWANG_DEB_PROFILE=dev: the package is made from the debug build the tests just built,
# instead of a release build of several minutes; cargo-deb warns that it is meant for
# releases), by the ignored test `cargo test -p shouwang-relay --test deb -- --ignored`, or
# directly.
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() { echo "test-deb.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (apt-get install)"
if dpkg-query -W -f='${Status}' shouwang-relay 2>/dev/null | grep -q " installed"; then
  fail "shouwang-relay is already installed here; not touching it"
fi
for p in /var/lib/shouwang /etc/shouwang /var/backups/shouwang; do
  [ ! -e "$p" ] || fail "$p exists; not touching it"
done
! getent passwd shouwang >/dev/null || fail "the user shouwang exists; not touching it"

relay/deploy/install-cargo-deb.sh
cargo deb -p shouwang-relay --profile "${SHOUWANG_DEB_PROFILE:-release}"
deb="$(ls -t target/debian/shouwang-relay_*.deb | head -n 1)"
echo "test-deb.sh: built $deb"

cleanup() {
  apt-get purge -y shouwang-relay >/dev/null 2>&1 || true
  rm -rf /var/lib/shouwang /etc/shouwang /var/backups/shouwang
  userdel shouwang 2>/dev/null || true
  groupdel shouwang 2>/dev/null || true
}
trap cleanup EXIT

apt-get install -y "./$deb"

# The files and what the package made.
files="$(dpkg -L shouwang-relay)"
for f in /usr/bin/shouwang-relay /etc/shouwang/relay.toml \
         /usr/share/doc/shouwang-relay/README.Debian; do
  grep -qx "$f" <<<"$files" || fail "$f is not in the package"
  [ -e "$f" ] || fail "$f was not installed"
done
unit="$(grep -E '^/(usr/)?lib/systemd/system/shouwang-relay\.service$' <<<"$files")" \
  || fail "the systemd unit is not in the package"
grep -q '^ExecStart=/usr/bin/shouwang-relay --config /etc/shouwang/relay.toml serve$' "$unit" \
  || fail "the unit does not run the installed server"
grep -qx 'User=shouwang' "$unit" || fail "the unit does not run as shouwang"
systemd-analyze verify "$unit" || fail "systemd-analyze verify $unit"
dpkg-query -W -f='${Conffiles}\n' shouwang-relay | grep -q /etc/shouwang/relay.toml \
  || fail "/etc/shouwang/relay.toml is not a conffile"
help="$(shouwang-relay --help)"
grep -q 'init-school' <<<"$help" && grep -q 'backup' <<<"$help" && grep -q '学校服务器' <<<"$help" \
  || fail "shouwang-relay --help: $help"
getent passwd shouwang >/dev/null || fail "no user shouwang"
[ "$(stat -c %U:%a /var/lib/shouwang)" = shouwang:700 ] || fail "/var/lib/shouwang: $(stat -c %U:%a /var/lib/shouwang)"
[ "$(stat -c %U:%a /etc/shouwang)" = shouwang:750 ] || fail "/etc/shouwang: $(stat -c %U:%a /etc/shouwang)"
if systemctl is-enabled shouwang-relay >/dev/null 2>&1; then
  fail "the service is enabled before the school is set up"
fi

# As the service's user, in a private network namespace: set up, serve, invite, back up.
unshare -n bash -euo pipefail -c '
  ip link set lo up
  ip link add sw0 type veth peer name sw1
  ip addr add 10.203.0.1/24 dev sw0
  ip link set sw0 up; ip link set sw1 up
  R="runuser -u shouwang -- shouwang-relay --config /etc/shouwang/relay.toml"
  # Before the address is known, serve refuses (the package config has none).
  if $R serve 2>/dev/null; then echo "serve ran without a school" >&2; exit 1; fi
  $R init-school --name 郭庄小学 --town 丁里镇 --admin 张长友 --lan-addr 10.203.0.1
  grep -q "10.203.0.1" /etc/shouwang/relay.toml
  [ "$(stat -c %U:%a /etc/shouwang/hub-data.key)" = shouwang:600 ]
  [ -f /var/lib/shouwang/hub.db ] && [ ! -e /var/lib/shouwang/hub-data.key ]
  $R serve 2>/tmp/shouwang-deb-serve.log & pid=$!
  for _ in $(seq 1 300); do
    curl -fsS http://127.0.0.1:3342/health 2>/dev/null | grep -q "\"status\":\"ok\"" && break
    sleep 0.1
  done
  curl -fsS http://127.0.0.1:3342/health | grep -q "\"status\":\"ok\""
  $R invite --role 班主任 --member 王瑞侠 | grep -q "^shouwang1"
  $R backup --out /var/backups/shouwang/test.backup
  [ -s /var/backups/shouwang/test.backup ]
  kill -TERM "$pid"; wait "$pid" || true
'

apt-get purge -y shouwang-relay
[ ! -e /usr/bin/shouwang-relay ] || fail "purge left /usr/bin/shouwang-relay"
[ -f /var/lib/shouwang/hub.db ] || fail "purge removed the school's data"
echo "test-deb.sh: ok"
