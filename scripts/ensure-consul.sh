#!/usr/bin/env bash
# Prints the path of a `consul` binary, fetching one when none is available.
# Order: $CONSUL_BIN, `consul` on PATH, a cached copy, else Debian's `consul`
# package (suite bullseye, component main) downloaded with apt into a cache
# folder without touching the system's apt state. The archive address is read
# from the system's own apt configuration, never written here.
set -euo pipefail

if [[ -n "${CONSUL_BIN:-}" ]]; then
  [[ -x "$CONSUL_BIN" ]] || { echo "CONSUL_BIN=$CONSUL_BIN is not executable" >&2; exit 1; }
  echo "$CONSUL_BIN"; exit 0
fi
if command -v consul >/dev/null 2>&1; then command -v consul; exit 0; fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${CONSUL_CACHE_DIR:-$root/.cache/consul}"
bin="$cache/root/usr/bin/consul"
if [[ -x "$bin" ]]; then echo "$bin"; exit 0; fi

command -v apt-get >/dev/null 2>&1 || {
  echo "no consul found: install Consul and put it on PATH, or set CONSUL_BIN" >&2; exit 1; }

# The Debian archive address configured on this machine (deb822 or one-line format).
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
  [[ -f "$f" ]] || continue
  mirror=$(awk '/^URIs:/{print $2; exit}' "$f" | grep -v -- '-security' || true)
  [[ -n "$mirror" ]] && break
done
if [[ -z "$mirror" && -f /etc/apt/sources.list ]]; then
  mirror=$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
fi
[[ -n "$mirror" ]] || { echo "no Debian archive configured in /etc/apt; set CONSUL_BIN" >&2; exit 1; }

mkdir -p "$cache"
# Parallel test workers may all get here on a fresh machine: one fetches, the others wait.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache/.lock"
  flock 9
  if [[ -x "$bin" ]]; then echo "$bin"; exit 0; fi
fi
mkdir -p "$cache/lists/partial" "$cache/archives/partial" "$cache/etc" "$cache/root"
# Verify the archive's signature with the system keyring when it is there.
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
if [[ -f "$keyring" ]]; then trust="signed-by=$keyring"; else trust="trusted=yes"; fi
echo "deb [$trust] $mirror bullseye main" > "$cache/etc/sources.list"
opts=(
  -o "Dir::Etc::SourceList=$cache/etc/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$cache/lists"
  -o "Dir::Cache=$cache"
  -o "Dir::Cache::archives=$cache/archives"
  -o "Dir::State::status=/dev/null"
  -o "Debug::NoLocking=true"
  -o "APT::Sandbox::User=root"
)
echo "fetching consul from Debian bullseye into $cache" >&2
apt-get "${opts[@]}" -qq update >&2
(cd "$cache/archives" && apt-get "${opts[@]}" -qq download consul >&2)
deb=$(ls "$cache"/archives/consul_*.deb | head -1)
dpkg -x "$deb" "$cache/root"
[[ -x "$bin" ]] || { echo "consul package did not contain usr/bin/consul" >&2; exit 1; }
echo "$bin"
