# kcap's remote capture wrapper (POSIX sh). Run as:
#   sh -c SCRIPT kcap "$SSH_CONNECTION" TOOL IFACE SNAPLEN BUFFER_KIB COUNT FILTER
# Every argument arrives as one quoted word; nothing here is pasted into code.
# stdout carries the pcap stream and nothing else; messages go to stderr.
PATH=$PATH:/usr/sbin:/sbin:/usr/local/sbin
conn=$1 tool=$2 iface=$3 snap=$4 buffer=$5 count=$6 filter=$7
buffer_mib=$(( (buffer + 1023) / 1024 ))

# Never capture our own SSH session: it would feed on itself. sshd tells us its
# 4-tuple in SSH_CONNECTION ("client-ip client-port server-ip server-port").
own=
case $conn in *[!0-9a-fA-F.:\ ]*) conn= ;; esac
set -f
set -- $conn
set +f
if [ $# -eq 4 ]; then
  own="not (tcp and ((src host $1 and src port $2 and dst host $3 and dst port $4) or (src host $3 and src port $4 and dst host $1 and dst port $2)))"
fi
if [ -n "$own" ] && [ -n "$filter" ]; then
  filter="$own and ($filter)"
elif [ -n "$own" ]; then
  filter=$own
fi

# Found on PATH and executable (some shells' `command -v` also names plain files).
have() { p=$(command -v "$1" 2>/dev/null) && [ -x "$p" ]; }

if [ "$tool" = auto ]; then
  for t in tcpdump tshark dumpcap; do
    if have "$t"; then tool=$t; break; fi
  done
  if [ "$tool" = auto ]; then
    echo "kcap-remote: missing-tool: none of tcpdump, tshark, dumpcap is on PATH ($PATH)" >&2
    exit 127
  fi
elif ! have "$tool"; then
  echo "kcap-remote: missing-tool: $tool is not on PATH ($PATH)" >&2
  exit 127
fi
echo "kcap-remote: tool: $tool" >&2

case $tool in
  tcpdump) set -- tcpdump -U -n --immediate-mode -s "$snap" -i "$iface" -B "$buffer" -w - ;;
  tshark) set -- tshark -l -n -q -s "$snap" -i "$iface" -B "$buffer_mib" -F pcap -w - ;;
  dumpcap) set -- dumpcap -q -P -s "$snap" -i "$iface" -B "$buffer_mib" -w - ;;
esac
if [ "$count" != 0 ]; then set -- "$@" -c "$count"; fi
if [ -n "$filter" ]; then
  if [ "$tool" = tcpdump ]; then set -- "$@" "$filter"; else set -- "$@" -f "$filter"; fi
fi

# The tool runs in the background with its own stdin closed; our stdin is kcap's
# heartbeat ("k" + newline every second). When it stops (kcap ended, was killed, or
# the link died) the watcher stops the tool, so no capture outlives kcap.
# If the heartbeat went silent (rather than stdin closing: kcap's way to say stop),
# say so on stderr: if the stream still reaches kcap, the gap is not hidden.
exec 3<&0 4>&2
"$@" </dev/null 3<&- 4>&- &
pid=$!
(
  if have timeout; then
    lost=
    while :; do
      if ! line=$(timeout 5 head -n 1 <&3 2>/dev/null 4>&-); then lost=1; break; fi
      [ "$line" = k ] || break
    done
    [ -n "$lost" ] && echo "kcap-remote: heartbeat-lost" >&4
  else
    cat <&3 >/dev/null 4>&-
  fi
  # Hold no copy of stderr: the session ends when its last holder closes it.
  exec 4>&-
  kill -TERM "$pid" 2>/dev/null
  sleep 3
  kill -KILL "$pid" 2>/dev/null
) >/dev/null 2>&1 &
watcher=$!
exec 3<&- 4>&-
wait "$pid"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
