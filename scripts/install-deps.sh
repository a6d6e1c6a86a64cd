#!/usr/bin/env bash
# Installs the system libraries Recurrent needs (idempotent). Debian/Ubuntu: OpenBLAS and the
# `fortunes` corpus used as the default training text. macOS needs nothing (Accelerate).
set -euo pipefail
if [[ "$(uname)" == "Darwin" ]]; then exit 0; fi
need=()
[[ -e /usr/lib/x86_64-linux-gnu/libopenblas.so.0 || -e /usr/lib/aarch64-linux-gnu/libopenblas.so.0 ]] \
  || ldconfig -p 2>/dev/null | grep -q libopenblas.so.0 || need+=(libopenblas-dev)
[[ -d /usr/share/games/fortunes ]] || need+=(fortunes)
if (( ${#need[@]} )); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
