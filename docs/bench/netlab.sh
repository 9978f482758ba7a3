#!/usr/bin/env bash
# Measures qftp over the shared network lab (../shared/bench/netlab.sh: two
# network namespaces joined by an emulated link), next to scp, sftp and
# rsync. Run as root from the repository root: make bench-net
# Results go to stdout as TSV: tool, setting, bytes, seconds, MB/s, status.
# TMPDIR=/dev/shm puts both qftp's files and the peers' (the lab's state
# dir) on tmpfs: on this VM's ext4, creating a file costs up to 0.8 ms of
# kernel CPU after many deletions (ext4's recently_deleted inode scan),
# which swamps the small-file figures of every tool.
set -u
NETLAB=${NETLAB:-$(cd "$(dirname "$0")/../../.." && pwd)/shared/bench/netlab.sh}
W=${NETLAB_QFTP_DIR:-${TMPDIR:-/tmp}/qftp-netlab}
SIZE_MB=${SIZE_MB:-256}
FILES=${FILES:-2000}
[ -x "$NETLAB" ] || { echo "netlab not found at $NETLAB (set NETLAB)"; exit 1; }
command -v bc >/dev/null || apt-get install -y -qq bc >/dev/null
make build >/dev/null || exit 1
mkdir -p "$W/dl"
cp bin/qftp bin/qftpd "$W/"
D=$W/data
if [ ! -f "$D/users.db" ]; then
  echo pw | "$W/qftpd" --data "$D" user add bench --password-stdin --quota unlimited >/dev/null 2>&1
fi
mkdir -p "$D/home/bench"
[ -f "$D/home/bench/big" ] || head -c $((SIZE_MB << 20)) /dev/urandom > "$D/home/bench/big"
if [ ! -d "$W/small" ]; then
  mkdir -p "$W/small"
  for i in $(seq 1 "$FILES"); do head -c 16384 /dev/urandom > "$W/small/f$i"; done
fi
[ -d "$D/home/bench/tree" ] || cp -r "$W/small" "$D/home/bench/tree"
"$W/qftpd" --data "$D" user rescan bench >/dev/null 2>&1
"$NETLAB" up >/dev/null 2>&1 || exit 1
"$NETLAB" exec b "$W/qftpd" --data "$D" serve --listen 10.77.1.2:7443 > "$W/qftpd.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; pkill -f "qftpd --data $D" 2>/dev/null' EXIT
sleep 1
FP=$("$W/qftpd" --data "$D" fingerprint)

timed() { # name setting command...
  local name=$1 setting=$2; shift 2
  local s e rc
  s=$(date +%s.%N); "$@" >/dev/null 2>>"$W/errors.log"; rc=$?; e=$(date +%s.%N)
  echo "$s $e $rc"
}
qget() { # connections
  rm -f "$W/dl/big"*
  read -r s e rc < <(timed x x env QFTP_PASSWORD=pw timeout 200 "$NETLAB" exec a "$W/qftp" --no-progress --known-hosts "$W/kh" --fingerprint "$FP" --connections "$1" bench@10.77.1.2 get -f big "$W/dl/big")
  local got; got=$(stat -c %s "$W/dl/big" 2>/dev/null || echo 0)
  printf 'qftp-get\tconnections=%s\t%s\t%.2f\t%.2f\trc=%s\n' "$1" "$got" "$(echo "$e - $s" | bc)" "$(echo "$got / ($e - $s) / 1000000" | bc -l)" "$rc"
}
qput_small() { # jobs (auto: qftp's default)
  local j=(-j "$1"); [ "$1" = auto ] && j=()
  read -r s e rc < <(timed x x env QFTP_PASSWORD=pw timeout 300 "$NETLAB" exec a "$W/qftp" --no-progress --known-hosts "$W/kh" --fingerprint "$FP" "${j[@]}" bench@10.77.1.2 put -r -f "$W/small" "/small-$1-$RANDOM")
  printf 'qftp-put-r\tjobs=%s\t%s files\t%.2f\t-\trc=%s\n' "$1" "$FILES" "$(echo "$e - $s" | bc)" "$rc"
}
qget_small() { # jobs: the peers' -r figures are downloads too
  local j=(-j "$1"); [ "$1" = auto ] && j=()
  rm -rf "$W/dl/tree"
  read -r s e rc < <(timed x x env QFTP_PASSWORD=pw timeout 300 "$NETLAB" exec a "$W/qftp" --no-progress --known-hosts "$W/kh" --fingerprint "$FP" "${j[@]}" bench@10.77.1.2 get -r -f tree "$W/dl/tree")
  printf 'qftp-get-r\tjobs=%s\t%s files\t%.2f\t-\trc=%s\n' "$1" "$(find "$W/dl/tree" -type f | wc -l)" "$(echo "$e - $s" | bc)" "$rc"
}
scenario() { # delay loss rate [connection counts]
  "$NETLAB" up --delay "$1" --loss "$2" --rate "$3" >/dev/null 2>&1
  echo "## one-way delay $1, loss $2, rate $3"
  # One connection at 1 % loss moves about 0.5 MB/s: 256 MiB would hit the timeout.
  for c in ${CONNS:-${4:-1 4 16 64 128 auto}}; do qget "$c"; done
  "$NETLAB" peers --size "${SIZE_MB}M" --cc bbr --timeout 200 2>/dev/null | grep -v '^#'
  # TCP cubic, the usual default of internet servers (CUBIC=0 skips it).
  # On a lossy link it moves about 0.3 MB/s: 8 MiB is enough to measure.
  local cs="${SIZE_MB}M"; [ "$2" = 0 ] || cs=8M
  [ "${CUBIC:-1}" = 0 ] || "$NETLAB" peers --size "$cs" --cc cubic --timeout 200 2>/dev/null | grep -v '^#'
}
scenario 25ms 0 0
echo "## one-way delay 25ms, loss 0: $FILES files of 16 KiB"
for j in 1 16 64 auto; do qput_small "$j"; done
for j in 64 auto; do qget_small "$j"; done
"$NETLAB" peers --size 1M --cc bbr --files "$FILES" --file-size 16K --timeout 200 2>/dev/null | grep -v '^#' | grep -- '-r'
scenario 25ms 0.01 0 "16 64 128 auto"
scenario 25ms 0.03 0 "16 64 128 auto"
scenario 25ms 0.01 100mbit "16 64 128 auto"

# A 10 s blackout during a download: blackhole routes on both ends, so
# sends fail at once, as when a laptop's Wi-Fi drops.
blackout() { # delay loss connections start-after-seconds
  "$NETLAB" up --delay "$1" --loss "$2" >/dev/null 2>&1
  ( sleep "$4"
    ip -n nlA route add blackhole 10.77.1.2/32; ip -n nlB route add blackhole 10.77.1.1/32
    sleep 10
    ip -n nlA route del blackhole 10.77.1.2/32; ip -n nlB route del blackhole 10.77.1.1/32 ) &
  local bo=$!
  qget "$3" | sed 's/^qftp-get/qftp-get-blackout-10s/'
  wait "$bo"
  cmp -s "$W/dl/big" "$D/home/bench/big" && echo "# blackout copy identical" || echo "# blackout copy DIFFERS"
}
echo "## 10 s blackout during the transfer"
blackout 25ms 0 8 1.2
blackout 25ms 0.01 auto 3
