#!/usr/bin/env bash
# Install the system packages Autograd Explorer needs, with apt, when they are missing.
#
# Usage: scripts/install-system-deps.sh [PACKAGE...]
#   No argument: everything the app and its tests use (graphviz libseccomp2 chromium
#   redis-server nginx). The Dockerfile asks for graphviz and libseccomp2 only: the image
#   runs the app, not the tests.
# It installs only as root on a machine with apt-get; anywhere else it names what is
# missing in one sentence and exits 1, so `make install` never half-works.
set -euo pipefail

known="graphviz libseccomp2 chromium redis-server nginx"

# Whether a Debian package is installed: its command is there (its library, for
# libseccomp2: the edited-code sandbox loads it with ctypes; Linux only, as seccomp is).
# (A case statement rather than an associative array: macOS still ships bash 3.)
installed() {
  case "$1" in
    graphviz) command -v dot ;;
    libseccomp2) [ "$(uname -s)" != Linux ] || ldconfig -p | grep 'libseccomp\.so\.2 ' ;;
    chromium) command -v chromium ;;
    redis-server) command -v redis-server ;;
    nginx) command -v nginx ;;
  esac >/dev/null
}

packages=("$@")
if [ ${#packages[@]} -eq 0 ]; then
  read -r -a packages <<<"$known"
fi

# nginx (and ldconfig) live in /usr/sbin or /sbin, which a non-root PATH often lacks.
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

missing=()
for package in "${packages[@]}"; do
  case " $known " in
    *" $package "*) ;;
    *)
      echo "install-system-deps.sh: unknown package '$package' (known: $known)." >&2
      exit 2
      ;;
  esac
  installed "$package" || missing+=("$package")
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
