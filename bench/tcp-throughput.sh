#!/usr/bin/env bash
# TCP throughput through 10.0.2.2, usernet and slirp4netns alternating, like slirp4netns's own
# benchmarks/benchmark-iperf3.sh: iperf3 -s on the host's 127.0.0.1, iperf3 -c 10.0.2.2 in the
# guest, both directions (-R: host → guest), MTU 1500 and 65520. Root required; run
# `npm run build` first. Nothing listens anywhere but 127.0.0.1 and nothing leaves the machine.
#
#   bench/tcp-throughput.sh                 5 s per run
#   DURATION=10 MTUS="1500 4000 65520" bench/tcp-throughput.sh
#
# Binaries: USERNET_BENCH_BINS (comma-separated), default "<repo>/bin/usernet,/usr/bin/slirp4netns",
# where USERNET_E2E_BIN replaces the first. Extra environment (USERNET_NO_OFFLOAD=1) passes through.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
DURATION=${DURATION:-5}
MTUS=${MTUS:-"1500 65520"}
IFS=',' read -r -a BINS <<<"${USERNET_BENCH_BINS:-${USERNET_E2E_BIN:-$repo/bin/usernet},/usr/bin/slirp4netns}"

if [ "$(id -u)" != 0 ]; then
  echo "tcp-throughput: needs root (user namespaces mapped to root, /dev/net/tun)" >&2
  exit 2
fi
for tool in iperf3 unshare nsenter jq python3; do
  command -v "$tool" >/dev/null || { echo "tcp-throughput: $tool is missing" >&2; exit 2; }
done

workdir=$(mktemp -d /tmp/usernet-tput.XXXXXX)
pids=()

# Kills what this script started (by pid, children first) and removes its files.
cleanup() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -9 "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
  pids=()
}
trap 'cleanup; rm -rf "$workdir"' EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_until() { # tries cmd… every 0.1 s, 100 times
  local i
  for ((i = 0; i < 100; i++)); do
    if "$@" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

listening() { ss -Hltn "sport = :$1" | grep -q "127.0.0.1:$1"; }
ready_file_is_1() { [ "$(cat "$1" 2>/dev/null)" = 1 ]; }
ns_exists() { [ "$(readlink "/proc/$1/ns/net")" != "$(readlink /proc/self/ns/net)" ]; }

# run_one BIN MTU: sets RESULT to "<guest→host Gbit/s> <host→guest Gbit/s>" ("fail" for a failed run).
# Not called in $(…): the pids it starts must stay visible to the EXIT trap.
run_one() {
  local bin=$1 mtu=$2 nspid binpid ready port srv up down log
  ready="$workdir/ready.$RANDOM"
  log="$workdir/bin.log"
  RESULT="fail fail"
  unshare --user --map-root-user --net sleep 3600 </dev/null >/dev/null 2>&1 &
  nspid=$!
  pids+=("$nspid")
  wait_until ns_exists "$nspid" || { cleanup; return; }
  sh -c 'exec "$0" "$@" 9>"'"$ready"'"' "$bin" -c -r 9 --mtu "$mtu" "$nspid" tap0 </dev/null >"$log" 2>&1 &
  binpid=$!
  pids+=("$binpid")
  if ! wait_until ready_file_is_1 "$ready"; then
    echo "tcp-throughput: $bin did not become ready: $(tail -3 "$log")" >&2
    cleanup
    return
  fi
  local results=()
  for rev in "" "-R"; do
    port=$(free_port)
    iperf3 -s -B 127.0.0.1 -p "$port" -1 </dev/null >/dev/null 2>&1 &
    srv=$!
    pids+=("$srv")
    local bps=fail
    if wait_until listening "$port"; then
      local json
      json=$(timeout $((DURATION + 20)) nsenter -t "$nspid" -U --preserve-credentials -n -- \
        iperf3 -c 10.0.2.2 -p "$port" -t "$DURATION" --connect-timeout 3000 -J $rev 2>/dev/null || true)
      bps=$(jq -r '.end.sum_received.bits_per_second // empty' <<<"$json" 2>/dev/null || true)
      if [ -n "$bps" ]; then
        bps=$(awk -v b="$bps" 'BEGIN { printf "%.2f", b / 1e9 }')
      else
        echo "tcp-throughput: $bin mtu $mtu ${rev:-guest→host}: $(jq -r '.error // empty' <<<"$json" 2>/dev/null || echo no result)" >&2
        bps=fail
      fi
    fi
    kill -9 "$srv" 2>/dev/null || true
    wait "$srv" 2>/dev/null || true
    results+=("$bps")
  done
  if ! kill -0 "$binpid" 2>/dev/null; then echo "tcp-throughput: $bin exited: $(tail -3 "$log")" >&2; fi
  cleanup
  RESULT="${results[0]} ${results[1]}"
}

declare -A table
for mtu in $MTUS; do
  for bin in "${BINS[@]}"; do
    echo "tcp-throughput: $(basename "$bin") mtu $mtu, ${DURATION} s each way…" >&2
    run_one "$bin" "$mtu"
    table["$bin/$mtu"]=$RESULT
  done
done

echo
echo "TCP throughput through 10.0.2.2 (iperf3, ${DURATION} s, Gbit/s received)"
echo
printf '%-32s %6s %14s %14s\n' binary mtu "guest→host" "host→guest"
for mtu in $MTUS; do
  for bin in "${BINS[@]}"; do
    read -r up down <<<"${table["$bin/$mtu"]}"
    printf '%-32s %6s %12s %12s\n' "$bin" "$mtu" "$up" "$down"
  done
done
