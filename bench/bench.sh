#!/usr/bin/env bash
# Side-by-side benchmarks of wirecat, socat, ncat and OpenBSD nc on loopback.
# Prints ratios (machines here are noisy; ratios travel, absolute times don't).
# Usage: bench/bench.sh [SIZE_MiB [SECTION...]]   sections: tcp lines udp conns startup scan framers record (default all)
set -u
cd "$(dirname "$0")/.."
MIB=${1:-1024}; shift || true
SECTIONS=" ${*:-tcp lines udp conns startup scan framers record} "
want() { [[ $SECTIONS == *" $1 "* ]]; }
tmp=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
# static, as released (a cgo build pays for the dynamic loader at every start),
# and installed as a user's copy is: a file the linker has just written (through
# mmap) starts 0.5-0.9 ms slower here than the same bytes written by cp, install
# or tar, which is how every other program measured here got to disk.
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$tmp/wirecat.linked" ./cmd/wirecat || exit 1
install -m 755 "$tmp/wirecat.linked" "$tmp/wirecat" && rm "$tmp/wirecat.linked"
go build -o "$tmp/udpflood" ./bench/udpflood && go build -o "$tmp/connstorm" ./bench/connstorm || exit 1
W="$tmp/wirecat"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
waitport() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }
waitlisten() { local h; h=$(printf ':%04X ' "$1"); for _ in $(seq 200); do grep -q "$h.* 0A " /proc/net/tcp 2>/dev/null && return 0; sleep 0.02; done; }

if want tcp; then
echo "## TCP stream: $MIB MiB, client → server > /dev/null"
declare -A tcp
for tool in wirecat socat ncat nc; do
  command -v "${tool/wirecat/$W}" >/dev/null 2>&1 || [ "$tool" = wirecat ] || { echo "$tool: missing"; continue; }
  p=$(port)
  case $tool in
    wirecat) "$W" listen 127.0.0.1:$p </dev/null >/dev/null & ;;
    socat) socat -u TCP-LISTEN:$p,bind=127.0.0.1,reuseaddr STDOUT >/dev/null & ;;
    ncat) ncat -l 127.0.0.1 $p --recv-only >/dev/null & ;;
    nc) nc -l 127.0.0.1 $p >/dev/null </dev/null & ;;
  esac
  srv=$!; waitlisten $p
  t0=$(now)
  case $tool in
    wirecat) head -c ${MIB}M /dev/zero | "$W" connect 127.0.0.1:$p >/dev/null ;;
    socat) head -c ${MIB}M /dev/zero | socat -u STDIN TCP:127.0.0.1:$p ;;
    ncat) head -c ${MIB}M /dev/zero | ncat --send-only 127.0.0.1 $p ;;
    nc) head -c ${MIB}M /dev/zero | nc -N 127.0.0.1 $p >/dev/null ;;
  esac
  wait $srv; t1=$(now)
  tcp[$tool]=$(python3 -c "print(round($MIB*1.048576/($t1-$t0)))")
  echo "$tool: ${tcp[$tool]} MB/s"
done
python3 - "${tcp[wirecat]:-0}" "${tcp[socat]:-1}" "${tcp[ncat]:-1}" "${tcp[nc]:-1}" <<'PY'
import sys; w,s,n,o=map(float,sys.argv[1:])
print(f"wirecat/socat {w/s:.2f}x  wirecat/ncat {w/n:.2f}x  wirecat/nc {w/o:.2f}x")
PY
fi

if want lines; then
echo; echo "## TCP stream with --frame line -o lines into a file ($MIB MiB of 64-byte lines)"
python3 -c "
import sys
line=b'x'*63+b'\n'
with open('$tmp/lines','wb') as f:
  for _ in range($MIB*16384//1024): f.write(line*1024)
"
for mode in raw line; do
  p=$(port)
  if [ $mode = raw ]; then "$W" listen 127.0.0.1:$p </dev/null >"$tmp/out" & else "$W" listen 127.0.0.1:$p --frame line -o lines </dev/null >"$tmp/out" & fi
  srv=$!; waitlisten $p; t0=$(now)
  "$W" connect 127.0.0.1:$p <"$tmp/lines" >/dev/null; wait $srv; t1=$(now)
  r=$(python3 -c "print(round($MIB*1.048576/($t1-$t0)))"); echo "$mode: $r MB/s"; eval "framed_$mode=$r"
done
python3 -c "print(f'line/raw {$framed_line/$framed_raw:.2f}')"
rm -f "$tmp/lines" "$tmp/out"
fi

if want udp; then
echo; echo "## UDP: 64-byte datagrams at full rate (500k sent)"
N=500000
for tool in wirecat socat ncat nc; do
  p=$(port)
  case $tool in
    wirecat) "$W" listen -u 127.0.0.1:$p -o raw </dev/null >"$tmp/udp" & ;; # raw: the datagrams as they came, no line per datagram
    socat) socat -u UDP-RECV:$p,bind=127.0.0.1 STDOUT >"$tmp/udp" & ;;
    ncat) ncat -u -l 127.0.0.1 $p --recv-only >"$tmp/udp" & ;;
    nc) nc -u -l 127.0.0.1 $p </dev/null >"$tmp/udp" & ;;
  esac
  srv=$!; sleep 0.3
  read sent secs < <("$tmp/udpflood" -to 127.0.0.1:$p -n $N -size 64)
  sleep 0.5; kill $srv 2>/dev/null; wait $srv 2>/dev/null
  got=$(( $(stat -c %s "$tmp/udp") / 64 ))
  python3 -c "print(f'$tool: received {$got/$secs/1000:.0f}k/s, lost {100*(1-$got/$sent):.1f}%')"
done
fi

if want conns; then
echo; echo "## listen -k: 10,000 short connections from 50 parallel clients, each one line"
for tool in wirecat socat ncat; do
  p=$(port)
  case $tool in
    wirecat) "$W" listen -k 127.0.0.1:$p </dev/null >"$tmp/conns" & ;;
    socat) socat -u TCP-LISTEN:$p,bind=127.0.0.1,reuseaddr,fork STDOUT >"$tmp/conns" & ;;
    ncat) ncat -k -l 127.0.0.1 $p --recv-only >"$tmp/conns" & ;;
  esac
  srv=$!; waitlisten $p
  read total failed secs < <("$tmp/connstorm" -to 127.0.0.1:$p -n 10000 -c 50)
  sleep 0.3; kill $srv 2>/dev/null; wait $srv 2>/dev/null
  lines=$(wc -l <"$tmp/conns")
  python3 -c "print(f'$tool: {$total/$secs:.0f} conns/s, {$lines} of $total lines reached stdout, {$failed} failed')"
done
fi

if want startup; then
echo; echo "## start-up and size (median and 25th percentile of 500 runs each, interleaved)"
cat >"$tmp/hello.go" <<'GO'
package main

import "os"

func main() { os.Stdout.WriteString("hello\n") }
GO
(cd "$tmp" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o hello.linked hello.go && install -m 755 hello.linked hello)
go build -o "$tmp/startcmp" ./bench/startcmp || exit 1
closed=$(port)   # nobody listens there: send is refused at once
startup=("$W version" "socat -V" "$W send 127.0.0.1:$closed x" "$tmp/hello")
# Interleaved in random order, so load from elsewhere hits all alike; CPU
# time (user + system) is less sensitive to it than wall time. One wirecat
# command per run: a program starts faster right after itself.
"$tmp/startcmp" -n 500 -warmup 50 "$W version" "socat -V" "$tmp/hello"
"$tmp/startcmp" -n 500 -warmup 50 "$W send 127.0.0.1:$closed x" "socat -V" "$tmp/hello" | tail -n +2
for c in "${startup[@]}"; do
  name=$(echo "${c#"$tmp/"}" | cut -c1-30)
  faults=; instr=
  if command -v perf >/dev/null; then
    faults=$(perf stat -x, -r 50 -e page-faults $c 2>&1 >/dev/null | grep page-faults | cut -d, -f1)
  fi
  if command -v valgrind >/dev/null; then
    instr=$(GODEBUG=asyncpreemptoff=1 valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null $c 2>&1 >/dev/null | sed -n 's/.*I *refs: *//p')
  fi
  printf '%-32s page faults %6s   instructions %12s\n' "$name" "${faults:-?}" "${instr:-?}"
done
echo "stripped binary: $(stat -c %s "$W") bytes"
fi

if want scan; then
echo; echo "## connect -z 127.0.0.1 1-65535 vs nc -z, side by side (best of 3)"
for tool in wirecat nc; do
  best=999
  for _ in 1 2 3; do
    t0=$(now)
    case $tool in
      wirecat) "$W" connect -z 127.0.0.1 1-65535 >/dev/null 2>&1 ;;
      nc) nc -z 127.0.0.1 1-65535 >/dev/null 2>&1 ;;
    esac
    t1=$(now)
    best=$(python3 -c "print(min($best, $t1-$t0))")
  done
  echo "$tool: $(python3 -c "print(f'{$best:.3f}')") s"; eval "scan_$tool=$best"
done
python3 -c "print(f'wirecat/nc time {$scan_wirecat/$scan_nc:.2f}')"
fi

if want framers; then
echo; echo "## framers (Go benchmarks, MB/s)"
go test -run '^$' -bench 'Decode' -benchtime 200ms ./proto/ 2>/dev/null | grep -E 'MB/s'
fi

if want record; then
LINE=${LINE:-64}   # bytes per line, newline included
echo; echo "## --record cost: $MIB MiB of $LINE-byte lines, connect → listen --frame line > /dev/null"
python3 -c "
line=b'x'*($LINE-1)+b'\n'
with open('$tmp/lines','wb') as f:
  for _ in range($MIB*1048576//$LINE//1024): f.write(line*1024)
"
for mode in plain record plain record; do
  p=$(port); rm -f "$tmp/rec.jsonl"
  if [ $mode = plain ]; then "$W" listen 127.0.0.1:$p --frame line </dev/null >/dev/null &
  else "$W" listen 127.0.0.1:$p --frame line --record "$tmp/rec.jsonl" </dev/null >/dev/null & fi
  srv=$!; waitlisten $p; t0=$(now)
  "$W" connect 127.0.0.1:$p <"$tmp/lines" >/dev/null; wait $srv; t1=$(now)
  r=$(python3 -c "print(round($MIB*1.048576/($t1-$t0)))"); echo "$mode: $r MB/s"
  if [ $mode = record ]; then echo "  recording: $(stat -c %s "$tmp/rec.jsonl") bytes, $(wc -l <"$tmp/rec.jsonl") lines"; fi
  eval "rec_$mode=\"\${rec_$mode:-} $r\""
done
python3 - $rec_plain -- $rec_record <<'PY'
import sys
a=sys.argv[1:]; i=a.index('--'); plain=max(map(float,a[:i])); rec=max(map(float,a[i+1:]))
print(f"record/plain {rec/plain:.2f} (cost {100*(1-rec/plain):.0f}% of throughput; best of two runs each)")
PY
rm -f "$tmp/lines" "$tmp/rec.jsonl"
fi
