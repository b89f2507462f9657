# kcap's remote capture wrapper (POSIX sh). Run as:
#   sh -c SCRIPT kcap "$SSH_CONNECTION" TOOL IFACE SNAPLEN BUFFER_KIB COUNT FILTER AGENT_BYTES DIRECTION PROCESS
# Every argument arrives as one quoted word; nothing here is pasted into code.
# stdout carries the pcap stream and nothing else; messages go to stderr.
# With AGENT_BYTES > 0, stdin starts with that many bytes of kcap's capture agent
# (crates/agent); kcap sends its heartbeat only once it has been read (agent-read).
# PROCESS (off, on, auto) is --process: only the agent attributes packets to
# processes, so with on (kcap then asks for TOOL agent) nothing else is used.
PATH=$PATH:/usr/sbin:/sbin:/usr/local/sbin
conn=$1 tool=$2 iface=$3 snap=$4 buffer=$5 count=$6 filter=$7 agent_bytes=${8:-0} direction=${9:-inout} process=${10:-off}
case $direction in
  in|out|inout) ;;
  *) echo "kcap-remote: unknown direction: $direction" >&2; exit 2 ;;
esac
case $process in
  off|on|auto) ;;
  *) echo "kcap-remote: unknown process mode: $process" >&2; exit 2 ;;
esac
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

# kcap -D: no capture, the interfaces here as `tcpdump -D` lists them; without
# tcpdump (many images), the kernel's list in the same shape: index.name [flags],
# Up and Loopback from the flags (IFF_UP 0x1, IFF_LOOPBACK 0x8), Running from the
# carrier (the flags file leaves IFF_RUNNING out).
if [ "$tool" = list-interfaces ]; then
  if have tcpdump && tcpdump -D 2>/dev/null; then exit 0; fi
  n=0
  for d in /sys/class/net/*; do
    [ -e "$d" ] || continue
    n=$((n + 1))
    # `read`, a builtin: the image may have no cat.
    read -r flags < "$d/flags" 2>/dev/null || flags=0
    case $flags in 0x[0-9a-fA-F]*) ;; *) flags=0 ;; esac
    words=
    [ $((flags & 1)) -ne 0 ] && words="$words, Up"
    carrier=0
    read -r carrier < "$d/carrier" 2>/dev/null
    [ "$carrier" = 1 ] && words="$words, Running"
    [ $((flags & 8)) -ne 0 ] && words="$words, Loopback"
    printf '%s.%s [%s]\n' "$n" "${d##*/}" "${words#, }"
  done
  [ "$n" -gt 0 ] || { echo "kcap-remote: no interface found in /sys/class/net" >&2; exit 1; }
  exit 0
fi

# kcap's capture agent, if kcap sent it and it is wanted: it needs tcpdump to compile
# the filter (for the link type it will write: LINUX_SLL2 on `any`, else Ethernet if
# the interface has it, else LINUX_SLL2), done before the agent is stored so that
# it is on disk only for the moment between storing and starting it (it deletes
# itself first thing; the trap covers every other exit).
agent= dir= bpf= linktype= unusable=
case $agent_bytes in *[!0-9]*|'') agent_bytes=0 ;; esac
agent_unusable() {
  echo "kcap-remote: agent-unusable: $1" >&2
  if [ "$tool" = agent ]; then
    echo "kcap-remote: missing-tool: kcap's capture agent cannot run here: $1" >&2
    exit 127
  fi
  if [ "$process" = auto ]; then
    echo "kcap-remote: process-unavailable: kcap's capture agent cannot run here: $1" >&2
  fi
}
# tcpdump's chatter ("tcpdump: data link type ...") comes along; the agent skips it.
compile() { out=$(tcpdump -ddd -y "$1" -s "$snap" -i "$iface" -- "$filter" 2>&1) && bpf=$out && linktype=$1; }
if [ "$tool" = agent ] || { [ "$tool" = auto ] && [ "$agent_bytes" != 0 ]; }; then
  if [ "$agent_bytes" = 0 ]; then
    unusable="kcap did not send it"
  elif ! have tcpdump; then
    unusable="tcpdump (which compiles the filter for it) is not on PATH"
  else
    if [ "$iface" = any ]; then
      compile LINUX_SLL2
    elif ! compile EN10MB; then
      case $out in *"not one of the DLTs"*) compile LINUX_SLL2 ;; *) false ;; esac
    fi
    if [ -z "$linktype" ]; then
      # The filter (or interface) is refused: let tcpdump say so, as without the agent.
      head -c "$agent_bytes" > /dev/null
      echo "kcap-remote: tool: tcpdump" >&2
      printf '%s\n' "$out" >&2
      exit 1
    fi
  fi
fi
if [ "$agent_bytes" != 0 ]; then
  if [ -n "$linktype" ]; then
    trap 'rm -rf "$dir"' EXIT
    # PIPE too: with kcap gone, the first write to its closed stdout or stderr
    # would otherwise end the shell without the EXIT trap.
    trap 'exit 143' TERM HUP INT PIPE
  fi
  if [ -n "$linktype" ] && dir=$(mktemp -d "${TMPDIR:-/tmp}/kcap-agent.XXXXXX" 2>/dev/null); then
    # Whatever happens here, the agent's bytes are read once, never more.
    if head -c "$agent_bytes" > "$dir/kcap-agent" &&
      [ "$(wc -c < "$dir/kcap-agent")" -eq "$agent_bytes" ] &&
      chmod 700 "$dir/kcap-agent"; then
      agent=$dir/kcap-agent
    else
      unusable="could not store it in $dir"
    fi
  else
    # Read it anyway: kcap's heartbeat follows it on stdin.
    head -c "$agent_bytes" > /dev/null
    if [ -n "$linktype" ]; then unusable="could not store it in ${TMPDIR:-/tmp}"; fi
  fi
fi
# Read once: from here on stdin is kcap's heartbeat, which kcap starts on this line.
if [ "$agent_bytes" != 0 ]; then echo "kcap-remote: agent-read" >&2; fi
if [ -n "$unusable" ]; then agent_unusable "$unusable"; fi

# Which program captures without the agent (or after it could not start).
pick_tool() {
  if [ "$tool" = auto ] || [ "$tool" = agent ]; then
    tool=auto
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
}

# -Q: tcpdump and the agent take it as a flag (the agent reads each packet's
# direction from the ring, as libpcap does). tshark and dumpcap have no such flag:
# libpcap's `inbound`/`outbound` filter tests the same packet type (on Linux, on any
# interface), so it is joined to theirs. Nothing is added for inout, so a tool
# without -Q still captures both ways.
direction_filter() {
  case $direction in
    in) word=inbound ;;
    out) word=outbound ;;
    *) printf '%s' "$filter"; return ;;
  esac
  if [ -n "$filter" ]; then printf '%s' "$word and ($filter)"; else printf '%s' "$word"; fi
}

# Runs the capture with TOOL ($1) in the background with its own stdin closed; our
# stdin is kcap's heartbeat ("k" + newline every second). When it stops (kcap ended,
# was killed, or the link died) the watcher stops the tool, so no capture outlives
# kcap. If the heartbeat went silent (rather than stdin closing: kcap's way to say
# stop), say so on stderr: if the stream still reaches kcap, the gap is not hidden.
# Sets $status.
capture_with() {
  case $1 in
    kcap-agent)
      set -- "$agent" --remove "$dir" -y "$linktype" -s "$snap" -i "$iface" -B "$buffer" --bpf "$bpf"
      if [ "$process" != off ]; then set -- "$@" --process "$process"; fi ;;
    tcpdump) set -- tcpdump -U -n --immediate-mode -s "$snap" -i "$iface" -B "$buffer" -w - ;;
    tshark) set -- tshark -l -n -q -s "$snap" -i "$iface" -B "$buffer_mib" -F pcap -w - ;;
    dumpcap) set -- dumpcap -q -P -s "$snap" -i "$iface" -B "$buffer_mib" -w - ;;
  esac
  if [ "$count" != 0 ]; then set -- "$@" -c "$count"; fi
  if [ "$direction" != inout ] && { [ "$1" = tcpdump ] || [ "$1" = "$agent" ]; }; then
    set -- "$@" -Q "$direction"
  fi
  if [ -n "$filter" ] && [ "$tool" = tcpdump ]; then set -- "$@" "$filter"; fi
  if { [ "$tool" = tshark ] || [ "$tool" = dumpcap ]; } && tool_filter=$(direction_filter) && [ -n "$tool_filter" ]; then
    set -- "$@" -f "$tool_filter"
  fi
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
  wait "$pid"
  status=$?
  kill "$watcher" 2>/dev/null
}

exec 3<&0 4>&2
if [ -n "$agent" ]; then
  # The agent says "tool: kcap-agent" once it captures. Exit 3: it could not set up
  # here (it said why, as agent-unusable); 126/127: it cannot run here at all (not
  # executable, an older C library). Either way it wrote nothing: capture without it.
  tool_wanted=$tool
  tool=kcap-agent
  capture_with kcap-agent
  case $status in
    126|127) echo "kcap-remote: agent-unusable: it does not run here (exit $status)" >&2 ;;
  esac
  if [ "$status" = 3 ] || [ "$status" = 126 ] || [ "$status" = 127 ]; then
    # An agent that never started did not delete itself: gone now, not at the
    # end of the capture that follows.
    rm -rf "$dir"
    if [ "$process" = auto ]; then
      echo "kcap-remote: process-unavailable: kcap's capture agent could not start here (see above)" >&2
    fi
    tool=$tool_wanted
    if [ "$tool" = agent ]; then
      echo "kcap-remote: missing-tool: kcap's capture agent cannot run here (see above)" >&2
      exit 127
    fi
    pick_tool
    capture_with "$tool"
  fi
else
  pick_tool
  capture_with "$tool"
fi
exit "$status"
