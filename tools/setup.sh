#!/usr/bin/env bash
# setup.sh — install what ipcf needs to build, test, fuzz and benchmark, from
# Debian 12 packages. Safe to run again: it installs only what is missing.
set -euo pipefail
pkgs=(make gcc clang libclang-rt-14-dev libsodium-dev pkg-config iproute2 procps)
# Benchmark baselines and plots (issue: side-by-side benchmarks).
pkgs+=(libnng-dev libzmq3-dev libtirpc-dev gnuplot-nox)
# ... and the rest of them: rpcgen, D-Bus (daemon and libdbus).
pkgs+=(rpcsvc-proto dbus-daemon libdbus-1-dev)
# The RPC runtime's persistent reply cache.
pkgs+=(libsqlite3-dev)
# The directory on etcd (issue 11): the client's libraries, and etcd itself
# for the tests' three-member clusters, which run curl (members' health,
# records written straight into etcd) and openssl (their TLS certificates):
# no other package of this list depends on curl, and openssl came only
# through python3-pip -> ca-certificates.
pkgs+=(libcurl4-openssl-dev libjson-c-dev etcd-server etcd-client curl openssl)
# The daemon under systemd (libsystemd: socket activation, sd_notify) and its
# tests (systemd-socket-activate, systemd-analyze verify).
pkgs+=(libsystemd-dev systemd)
# The installed product: binutils (ld -r, objcopy, readelf), the manual
# (scdoc; man-db, groff-base and col to check it), bash completion.
pkgs+=(binutils scdoc man-db groff-base bsdextrautils bash-completion)
# CI's memory checker over the integration suite (tests/run-valgrind.sh).
pkgs+=(valgrind)
# The Python package (python/: cffi, its pytest suite, pip into a venv) and
# the event-loop examples (libuv, GLib).
pkgs+=(python3-cffi python3-pytest python3-setuptools python3-venv python3-pip libuv1-dev libglib2.0-dev)
# `ipcf capture`'s test reads captures with tshark and tools/wireshark/ipcf.lua.
pkgs+=(tshark)
missing=()
for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        echo "setup: installing ${missing[*]}"
        $sudo apt-get update -qq
        # tshark's wireshark-common asks whether non-root users may capture:
        # answer no beforehand, so that the install never stops to ask.
        echo "wireshark-common wireshark-common/install-setuid boolean false" | $sudo debconf-set-selections
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
