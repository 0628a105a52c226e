#!/usr/bin/env bash
# install-tool.sh COMMAND PACKAGE...: installs the first of Debian's PACKAGEs
# that provides COMMAND, unless COMMAND is on the PATH already. A new machine's
# package lists may be missing or stale, so a failed install updates them once
# and tries again. Exit 1 (and say so) when COMMAND is still missing.
set -uo pipefail
command=$1
shift
command -v "$command" >/dev/null && exit 0
if command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; then
  export DEBIAN_FRONTEND=noninteractive  # (a prompt with its output hidden would look like a hang)
  updated=""
  for package in "$@"; do
    while true; do
      apt-get install -y -q "$package" >/dev/null 2>&1 && command -v "$command" >/dev/null && exit 0
      [[ -n "$updated" ]] && break
      apt-get update -q >/dev/null 2>&1
      updated=yes
    done
  done
fi
echo "$command not found (Debian: apt-get install ${1:-$command})" >&2
exit 1
