# kcap's remote capture wrapper (POSIX sh). Run as:
#   sh -c SCRIPT kcap "$SSH_CONNECTION" TOOL IFACE SNAPLEN BUFFER_KIB COUNT FILTER AGENT_BYTES
# Every argument arrives as one quoted word; nothing here is pasted into code.
# stdout carries the pcap stream and nothing else; messages go to stderr.
# With AGENT_BYTES > 0, stdin starts with that many bytes of kcap's capture agent
# (crates/agent); kcap sends its heartbeat only after the tool line below.
PATH=$PATH:/usr/sbin:/sbin:/usr/local/sbin
conn=$1 tool=$2 iface=$3 snap=$4 buffer=$5 count=$6 filter=$7 agent_bytes=${8:-0}
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

# The agent's bytes are read first, whatever tool ends up capturing. It removes its
# own directory as soon as it starts; the trap covers every exit before that.
agent= dir=
case $agent_bytes in *[!0-9]*|'') agent_bytes=0 ;; esac
if [ "$agent_bytes" != 0 ]; then
  trap 'rm -rf "$dir"' EXIT
  trap 'exit 143' TERM HUP INT
  if dir=$(mktemp -d "${TMPDIR:-/tmp}/kcap-agent.XXXXXX" 2>/dev/null) &&
    head -c "$agent_bytes" > "$dir/kcap-agent" &&
    [ "$(wc -c < "$dir/kcap-agent")" -eq "$agent_bytes" ] &&
    chmod 700 "$dir/kcap-agent"; then
    agent=$dir/kcap-agent
  else
    head -c "$agent_bytes" > /dev/null
    unusable="could not store it in ${TMPDIR:-/tmp}"
  fi
fi

# The agent needs tcpdump to compile the filter for it; it is used only if every
# step works here (a noexec /tmp, an older libc, an odd interface fall back).
agent_unusable() {
  echo "kcap-remote: agent-unusable: $1" >&2
  if [ "$tool" = agent ]; then
    echo "kcap-remote: missing-tool: kcap's capture agent cannot run here: $1" >&2
    exit 127
  fi
}
if [ "$tool" = agent ] || { [ "$tool" = auto ] && [ -n "$agent" ]; }; then
  if [ -z "$agent" ]; then
    agent_unusable "${unusable:-kcap did not send it}"
  elif ! have tcpdump; then
    agent_unusable "tcpdump (which compiles the filter for it) is not on PATH"
  elif ! linktype=$("$agent" --linktype -i "$iface" 2>&1); then
    agent_unusable "$linktype"
  elif ! bpf=$(tcpdump -ddd -y "$linktype" -s "$snap" -i "$iface" -- "$filter" 2>"$dir/err"); then
    # The filter (or interface) is refused: let tcpdump say so, as without the agent.
    echo "kcap-remote: tool: tcpdump" >&2
    cat "$dir/err" >&2
    exit 1
  elif ! probe=$("$agent" --probe -i "$iface" -B "$buffer" --bpf "$bpf" 2>&1); then
    agent_unusable "$probe"
  else
    tool=kcap-agent
  fi
fi

if [ "$tool" = kcap-agent ]; then
  :
elif [ "$tool" = auto ]; then
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
  kcap-agent) set -- "$agent" --remove "$dir" -s "$snap" -i "$iface" -B "$buffer" --bpf "$bpf" ;;
  tcpdump) set -- tcpdump -U -n --immediate-mode -s "$snap" -i "$iface" -B "$buffer" -w - ;;
  tshark) set -- tshark -l -n -q -s "$snap" -i "$iface" -B "$buffer_mib" -F pcap -w - ;;
  dumpcap) set -- dumpcap -q -P -s "$snap" -i "$iface" -B "$buffer_mib" -w - ;;
esac
if [ "$count" != 0 ]; then set -- "$@" -c "$count"; fi
if [ -n "$filter" ] && [ "$tool" != kcap-agent ]; then
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
