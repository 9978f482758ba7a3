#!/usr/bin/env bash
# How qftp shares a bottleneck with TCP: on the lab's link at 100 Mbit/s
# and 50 ms RTT, an scp download (TCP BBR) runs alone for 10 s, then a
# qftp get of 256 MiB starts; each one's rate while both ran is printed.
# Also two scp at once (the reference) and auto under a per-user cap of 8
# connections. Run as root from the repository root after `make
# bench-net` (it reuses that run's binaries, user and files), with the
# same TMPDIR. Takes about 15 minutes.
set -u
NETLAB=${NETLAB:-$(cd "$(dirname "$0")/../../.." && pwd)/shared/bench/netlab.sh}
W=${NETLAB_QFTP_DIR:-${TMPDIR:-/tmp}/qftp-netlab}
STATE=${NETLAB_DIR:-${TMPDIR:-/tmp}/netlab}
D=$W/data
F=$W/fair
[ -x "$W/qftpd" ] && [ -f "$D/home/bench/big" ] || { echo "run make bench-net first (same TMPDIR)"; exit 1; }
command -v bc >/dev/null || apt-get install -y -qq bc >/dev/null
mkdir -p "$F/dl"
[ -f "$F/src1g" ] || head -c $((1024 << 20)) /dev/urandom > "$F/src1g"
FP=$("$W/qftpd" --data "$D" fingerprint)
sz() { stat -c %s "$1" 2>/dev/null || echo 0; }
now() { date +%s.%N; }
rate() { echo "($2 - $1) / ($4 - $3) / 1000000" | bc -l; } # bytes0 bytes1 t0 t1
link() { # loss: the link, and sshd for it
  "$NETLAB" up --delay 25ms --loss "$1" --rate 100mbit >/dev/null 2>&1
  "$NETLAB" sshd >/dev/null 2>&1
  SSHOPTS=(-F /dev/null -i "$STATE/ssh/client_ed25519" -o IdentitiesOnly=yes -o UserKnownHostsFile=/dev/null
    -o StrictHostKeyChecking=no -o BatchMode=yes -o LogLevel=ERROR)
  rm -f "$F"/dl/*
}
bg_scp() { # start the long scp in the background; sets SCP
  ip netns exec nlA timeout 200 scp -q -P 2222 "${SSHOPTS[@]}" root@10.77.1.2:"$F/src1g" "$F/dl/scp" &
  SCP=$!
}
shared() { # label loss second-command...: scp's and the second transfer's rates while both ran
  local label=$1 loss=$2; shift 2
  link "$loss"
  bg_scp
  sleep 4; local a0 b0 a1 b1; a0=$(now); b0=$(sz "$F/dl/scp")
  sleep 6; a1=$(now); b1=$(sz "$F/dl/scp")
  local t0 s0 t1 s1 rc=0
  t0=$(now); s0=$(sz "$F/dl/scp")
  "$@" >/dev/null 2>>"$F/errors.log" || rc=$?
  t1=$(now); s1=$(sz "$F/dl/scp")
  kill "$SCP" 2>/dev/null; wait "$SCP" 2>/dev/null
  local got; got=$(sz "$F/dl/second")
  printf '%s\tloss=%s\tscp-alone=%.2f\tscp-shared=%.2f\tsecond=%.2f\tseconds=%.1f\trc=%s\n' "$label" "$loss" \
    "$(rate "$b0" "$b1" "$a0" "$a1")" "$(rate "$s0" "$s1" "$t0" "$t1")" "$(rate 0 "$got" "$t0" "$t1")" "$(echo "$t1 - $t0" | bc)" "$rc"
}
qget() { # connections
  env QFTP_PASSWORD=pw timeout 120 "$NETLAB" exec a "$W/qftp" --no-progress --known-hosts "$W/kh" --fingerprint "$FP" \
    --connections "$1" bench@10.77.1.2 get -f big "$F/dl/second"
}
scp2() { ip netns exec nlA timeout 150 scp -q -P 2222 "${SSHOPTS[@]}" root@10.77.1.2:"$D/home/bench/big" "$F/dl/second"; }

"$NETLAB" up --delay 25ms --rate 100mbit >/dev/null 2>&1 || exit 1
"$W/qftpd" --data "$D" user conns bench 0 >/dev/null 2>&1
"$NETLAB" exec b "$W/qftpd" --data "$D" serve --listen 10.77.1.2:7443 > "$F/qftpd.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; pkill -f "qftpd --data $D" 2>/dev/null; "$W/qftpd" --data "$D" user conns bench 0 >/dev/null 2>&1' EXIT
sleep 1
echo "# 100 Mbit/s, RTT 50 ms: scp (BBR) alone, then sharing with a second transfer (MB/s)"
for loss in 0 0.01; do
  shared scp+scp "$loss" scp2
  shared "scp+qftp-1" "$loss" qget 1 # at 1 % loss one connection does not finish in 120 s: its rate shows as 0
  shared scp+qftp-auto "$loss" qget auto
done
"$W/qftpd" --data "$D" user conns bench 8 >/dev/null 2>&1
shared scp+qftp-auto-cap8 0.01 qget auto
