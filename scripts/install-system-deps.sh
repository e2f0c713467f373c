#!/usr/bin/env bash
# Install the system packages Autograd Explorer needs, with apt, when they are missing.
#
# Usage: scripts/install-system-deps.sh [PACKAGE...]
#   No argument: everything the app and its tests use (graphviz chromium redis-server nginx).
#   The Dockerfile asks for graphviz only: the image runs the app, not the tests.
# It installs only as root on a machine with apt-get; anywhere else it names what is
# missing in one sentence and exits 1, so `make install` never half-works.
set -euo pipefail

# The command whose presence shows that a Debian package is installed.
# (A case statement rather than an associative array: macOS still ships bash 3.)
command_of() {
  case "$1" in
    graphviz) echo dot ;;
    chromium) echo chromium ;;
    redis-server) echo redis-server ;;
    nginx) echo nginx ;;
    *) return 1 ;;
  esac
}

packages=("$@")
if [ ${#packages[@]} -eq 0 ]; then
  packages=(graphviz chromium redis-server nginx)
fi

# nginx installs into /usr/sbin, which a non-root PATH often lacks.
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

missing=()
for package in "${packages[@]}"; do
  if ! command_name=$(command_of "$package"); then
    echo "install-system-deps.sh: unknown package '$package' (known: graphviz chromium redis-server nginx)." >&2
    exit 2
  fi
  command -v "$command_name" >/dev/null || missing+=("$package")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "Missing system packages (${missing[*]}): install them, e.g. sudo apt-get install ${missing[*]}, or run make install as root." >&2
  exit 1
fi

echo "Installing ${missing[*]} with apt-get."
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install --yes --no-install-recommends "${missing[@]}"
