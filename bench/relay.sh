#!/usr/bin/env bash
# wirecat relay side by side with socat and ncat --sh-exec on loopback:
# throughput of one TCP stream (SIZE MiB, default 1024) and the added round
# trip of a 1-byte ping-pong. Prints ratios; figures go in bench/RELAY.md.
# Usage: bench/relay.sh [SIZE_MiB [RUNS]]
set -u
cd "$(dirname "$0")/.."
MIB=${1:-1024}
RUNS=${2:-3}
tmp=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
go build -trimpath -ldflags '-s -w' -o "$tmp/wirecat" ./cmd/wirecat || exit 1
go build -o "$tmp/pump" ./bench/relaypump || exit 1
W="$tmp/wirecat"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
waitlisten() { local h; h=$(printf ':%04X ' "$1"); for _ in $(seq 200); do grep -q "$h.* 0A " /proc/net/tcp 2>/dev/null && return 0; sleep 0.02; done; }

# relay TOOL P Q starts the relay under test in the background.
relay() {
  case $1 in
    direct) return ;;
    wirecat) "$W" relay 127.0.0.1:$2 127.0.0.1:$3 & ;;
    wirecat-inspect) "$W" relay 127.0.0.1:$2 127.0.0.1:$3 -o raw >/dev/null & ;;
    socat) socat TCP-LISTEN:$2,bind=127.0.0.1,reuseaddr,fork TCP:127.0.0.1:$3 & ;;
    socat-b128k) socat -b131072 TCP-LISTEN:$2,bind=127.0.0.1,reuseaddr,fork TCP:127.0.0.1:$3 & ;;
    ncat) ncat -lk 127.0.0.1 $2 --sh-exec "ncat 127.0.0.1 $3" & ;;
  esac
  waitlisten $2
}

TOOLS="direct wirecat wirecat-inspect socat socat-b128k ncat"
declare -A mbps p50 p99
echo "## one TCP stream, $MIB MiB, best of $RUNS"
for tool in $TOOLS; do
  case $tool in socat*|ncat) command -v ${tool%%-*} >/dev/null || { echo "$tool: missing"; continue; } ;; esac
  best=0
  for _ in $(seq "$RUNS"); do
    p=$(port); q=$(port)
    relay $tool $p $q
    via=""; [ $tool = direct ] || via="127.0.0.1:$p"
    r=$("$tmp/pump" -mode stream -server 127.0.0.1:$q ${via:+-via $via} -mib "$MIB" | sed 's/.*mbps=\([0-9]*\).*/\1/')
    kill $(jobs -p) 2>/dev/null; wait 2>/dev/null
    [ "${r:-0}" -gt "$best" ] && best=$r
  done
  mbps[$tool]=$best
  printf '%-16s %6s MB/s\n' "$tool" "$best"
done

echo; echo "## round trip of 1 byte through the relay to an echo, 20000 times (µs)"
for tool in $TOOLS; do
  [ $tool = wirecat-inspect ] && continue
  case $tool in socat*|ncat) command -v ${tool%%-*} >/dev/null || continue ;; esac
  p=$(port); q=$(port)
  relay $tool $p $q
  via=""; [ $tool = direct ] || via="127.0.0.1:$p"
  out=$("$tmp/pump" -mode rtt -server 127.0.0.1:$q ${via:+-via $via} -n 20000)
  kill $(jobs -p) 2>/dev/null; wait 2>/dev/null
  p50[$tool]=$(echo "$out" | sed 's/.*p50=\([0-9.]*\).*/\1/')
  p99[$tool]=$(echo "$out" | sed 's/.*p99=\([0-9.]*\).*/\1/')
  printf '%-16s p50 %7s  p99 %7s\n' "$tool" "${p50[$tool]}" "${p99[$tool]}"
done

echo; echo "## ratios"
python3 - "${mbps[wirecat]:-0}" "${mbps[socat]:-1}" "${mbps[ncat]:-1}" "${mbps[direct]:-1}" "${mbps[socat-b128k]:-1}" \
  "${p50[wirecat]:-0}" "${p50[direct]:-0}" "${p50[socat]:-0}" "${p50[ncat]:-0}" <<'PY'
import sys
w, s, n, d, sb, pw, pd, ps, pn = map(float, sys.argv[1:])
print(f"throughput: wirecat/socat {w/s:.2f}x  wirecat/socat-b128k {w/sb:.2f}x  wirecat/ncat {w/n:.2f}x  wirecat/direct {w/d:.2f}")
print(f"added round trip p50: wirecat {pw-pd:.1f} µs  socat {ps-pd:.1f} µs  ncat {pn-pd:.1f} µs")
PY

# Proof of the zero-copy path: the relay's data moves by splice(2), through
# pipes borrowed per burst (issue 9: io.Copy held two pipe descriptors per
# direction of every idle pair), with no read or write of the payload.
if command -v strace >/dev/null; then
  echo; echo "## syscalls of wirecat relay moving 64 MiB (strace -c -f)"
  p=$(port); q=$(port)
  "$W" relay 127.0.0.1:$p 127.0.0.1:$q & wpid=$!; waitlisten $p
  strace -f -c -p $wpid -o "$tmp/strace" 2>/dev/null & spid=$!; sleep 0.5
  "$tmp/pump" -mode stream -server 127.0.0.1:$q -via 127.0.0.1:$p -mib 64 >/dev/null
  sleep 0.2; kill -INT $spid; wait $spid 2>/dev/null; kill $wpid
  grep -E 'syscall|splice|[^a-z](read|write|readv|writev|recvfrom|sendto)$' "$tmp/strace"
  echo "(64 MiB moved: a handful of read/write calls are the Go runtime waking up, not the payload)"
fi
