#!/usr/bin/env bash
# WebSocket side by side on loopback (issue 11): 64-byte messages per second
# through `connect ws://` to a wirecat listener, with Python websockets
# (Debian's python3-websockets) as the reference peer, and 1 GiB through
# ws:// against plain TCP. Every count is checked. Figures go in
# bench/README.md.
# Usage: bench/ws.sh [MESSAGES [MiB [RUNS]]]
set -u
cd "$(dirname "$0")/.."
N=${1:-1000000}
MIB=${2:-1024}
RUNS=${3:-3}
PY=/usr/bin/python3
tmp=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
go build -trimpath -ldflags '-s -w' -o "$tmp/wirecat" ./cmd/wirecat || exit 1
W="$tmp/wirecat"
port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
waitlisten() { local h; h=$(printf ':%04X ' "$1"); for _ in $(seq 200); do grep -q "$h.* 0A " /proc/net/tcp 2>/dev/null && return 0; sleep 0.02; done; }
now() { date +%s.%N; }
# connect waits half a second of silence for replies once stdin ends
# (WebSocket has no half-close): taken off its wall time.
LINGER=0.5

$PY -c "import sys; sys.stdout.write(('m'*64+'\n')*$N)" > "$tmp/msgs"
cat > "$tmp/client.py" <<'EOF'
import asyncio, sys, time, websockets
async def main():
    n, m = int(sys.argv[2]), b"m" * 64
    async with websockets.connect(sys.argv[1], max_size=None, compression=None) as ws:
        t = time.time()
        for _ in range(n):
            await ws.send(m)
        await ws.close()  # answered once the server has read every message
        print(f"{n / (time.time() - t):.0f}")
asyncio.run(main())
EOF
cat > "$tmp/server.py" <<'EOF'
import asyncio, sys, time, websockets
async def handler(ws, path):
    n, t = 0, None
    try:
        async for m in ws:
            if t is None: t = time.time()
            n += 1
    except websockets.ConnectionClosed:
        # wirecat waits half a second for the answer to its close; a server
        # still reading a backlog of messages answers later.
        pass
    print(n, f"{n / (time.time() - t):.0f}", flush=True)
async def main():
    async with websockets.serve(handler, "127.0.0.1", int(sys.argv[1]), max_size=None, compression=None):
        await asyncio.sleep(3600)
asyncio.run(main())
EOF

echo "== $N messages of 64 bytes"
for r in $(seq "$RUNS"); do
  p=$(port); "$W" listen "ws://127.0.0.1:$p/b" | wc -l > "$tmp/count" & waitlisten "$p"
  s=$(now); "$W" connect "ws://127.0.0.1:$p/b" -i lines < "$tmp/msgs"; e=$(now); wait
  printf 'wirecat → wirecat listen: %s messages, %.0f/s\n' "$(cat "$tmp/count")" "$(echo "$N / ($e - $s - $LINGER)" | bc -l)"
  p=$(port); "$W" listen "ws://127.0.0.1:$p/b" | wc -l > "$tmp/count" & waitlisten "$p"
  rate=$($PY "$tmp/client.py" "ws://127.0.0.1:$p/b" "$N"); wait
  printf 'python websockets → wirecat listen: %s messages, %s/s\n' "$(cat "$tmp/count")" "$rate"
  p=$(port); $PY "$tmp/server.py" "$p" > "$tmp/srv" & spid=$!; waitlisten "$p"
  "$W" connect "ws://127.0.0.1:$p/b" -i lines < "$tmp/msgs"
  for _ in $(seq 100); do [ -s "$tmp/srv" ] && break; sleep 0.1; done; kill $spid; wait $spid 2>/dev/null
  printf 'wirecat connect → python websockets server: %s messages, %s/s (as the server saw them)\n' $(cat "$tmp/srv")
  p=$(port); $PY "$tmp/server.py" "$p" > "$tmp/srv" & spid=$!; waitlisten "$p"
  rate=$($PY "$tmp/client.py" "ws://127.0.0.1:$p/b" "$N")
  for _ in $(seq 100); do [ -s "$tmp/srv" ] && break; sleep 0.1; done; kill $spid; wait $spid 2>/dev/null
  printf 'python → python (reference): %s messages, %s/s\n' "$(cut -d' ' -f1 "$tmp/srv")" "$rate"
done

echo "== $MIB MiB bulk"
head -c $((MIB << 20)) /dev/zero > "$tmp/bulk"
for r in $(seq "$RUNS"); do
  for scheme in tcp ws; do
    p=$(port); path=; off=0; [ $scheme = ws ] && path=/b && off=$LINGER
    "$W" listen "$scheme://127.0.0.1:$p$path" -o raw | wc -c > "$tmp/count" & waitlisten "$p"
    s=$(now); "$W" connect "$scheme://127.0.0.1:$p$path" -o raw < "$tmp/bulk"; e=$(now); wait
    printf '%s: %s bytes, %.0f MB/s\n' $scheme "$(cat "$tmp/count")" "$(echo "$MIB * 1.048576 / ($e - $s - $off)" | bc -l)"
  done
done
