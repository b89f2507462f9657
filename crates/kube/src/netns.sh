# kcap's way into a pod's network from its node (POSIX sh). Run as:
#   sh -c SCRIPT kcap-netns CONTAINER_ID POD_IP POINT CAPTURE...
# POINT `netns`: enter the pod's network namespace, found (each way tried only
# when the one before cannot answer) by crictl, else by the process table (a
# namespace holding POD_IP on an interface), else by /proc/PID/cgroup naming
# CONTAINER_ID. POINT `veth`: stay in the node's namespace and capture on the
# pod's host-side interface, found by POD_IP. Empty CONTAINER_ID and POD_IP: the
# node's own namespace (a node, a hostNetwork pod). Then CAPTURE runs. Every
# value arrives as one argument; nothing is pasted into code. On stderr:
#   kcap-netns: way: WAY          how the pod's network was found
#   kcap-netns: not-found: ...    no way worked: what each found (exit 126)
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin

# Sets `id` to the container ID a /proc/PID/cgroup line names (empty: none): the
# path's last part without `.scope` and the runtime's prefix (containerd
# `cri-containerd-ID.scope`, CRI-O `crio-ID.scope`, Docker `docker-ID.scope`;
# cgroupfs drivers name the bare ID). CRI-O's conmon runs in the node's
# namespace: it is not the container.
cgroup_id() {
  id=${1#*:}
  id=${id#*:}
  id=${id##*/}
  id=${id%.scope}
  case $id in
    crio-conmon-*) id= ;;
    cri-containerd-*) id=${id#cri-containerd-} ;;
    crio-*) id=${id#crio-} ;;
    docker-*) id=${id#docker-} ;;
  esac
  # IDs are hex (a pod's `.slice`, `init.scope` or a session are not containers).
  case $id in *[!0-9a-f]*) id= ;; esac
}

# Sets `pid` to the first process of PROC (/proc) whose cgroup file names `cid`.
pid_in_cgroups() {
  for f in "$1"/[0-9]*/cgroup; do
    [ -r "$f" ] || continue
    while IFS= read -r line; do
      cgroup_id "$line"
      if [ -n "$id" ] && [ "$id" = "$cid" ]; then
        pid=${f#"$1"/}
        pid=${pid%%/*}
        return 0
      fi
    done 2>/dev/null <"$f"
  done
  return 1
}

# Each way sets `pid` (or `dev` for the veth), or `why` when it cannot answer.
way_crictl() {
  [ -n "$cid" ] || { why="no container ID"; return 1; }
  command -v crictl >/dev/null 2>&1 || { why="crictl is not on PATH"; return 1; }
  out=$(crictl inspect -o go-template --template '{{.info.pid}}' "$cid" 2>&1) || {
    why="crictl inspect $cid failed: $(printf '%s' "$out" | head -n 1)"
    return 1
  }
  case $out in
    '' | *[!0-9]* | 0) why="crictl inspect gave no process ($out)"; return 1 ;;
  esac
  pid=$out
}

# The interface of the current namespace's `ip -o addr` output ($1) holding `ip`.
iface_holding() {
  while read -r _ name _ addr _; do
    if [ "${addr%/*}" = "$ip" ]; then
      printf '%s\n' "$name"
      return 0
    fi
  done <<EOF
$1
EOF
  return 1
}

# The MAC of interface $2 in process $1's namespace.
mac_of() {
  link=$(nsenter -t "$1" -n ip -o link show dev "$2" 2>/dev/null) || return 1
  link=${link#*link/ether }
  printf '%s\n' "${link%% *}"
}

way_ip() {
  [ -n "$ip" ] || { why="the pod has no IP"; return 1; }
  command -v nsenter >/dev/null 2>&1 || { why="nsenter is not on PATH"; return 1; }
  own=$(ls -Li /proc/$$/ns/net 2>/dev/null)
  seen=" ${own%% *} " found= count=0 checked=0
  table=$(ls -Li /proc/[0-9]*/ns/net 2>/dev/null)
  while read -r ino path; do
    case $seen in *" $ino "*) continue ;; esac
    seen="$seen$ino "
    p=${path#/proc/}
    p=${p%%/*}
    checked=$((checked + 1))
    addrs=$(nsenter -t "$p" -n ip -o addr show 2>/dev/null) || continue
    if name=$(iface_holding "$addrs"); then
      found="$found $p:$name"
      count=$((count + 1))
    fi
  done <<EOF
$table
EOF
  if [ "$count" -eq 1 ]; then
    pid=${found# }
    pid=${pid%%:*}
    return 0
  fi
  if [ "$count" -eq 0 ]; then
    why="none of the $checked network namespaces of the node's processes holds $ip"
    return 1
  fi
  # Several (a pod being replaced, or namespaces of another system with the same
  # range): the one whose MAC this node's neighbour table has for the IP.
  neigh=$(ip neigh show to "$ip" 2>/dev/null)
  kept= n=0
  for c in $found; do
    m=$(mac_of "${c%%:*}" "${c#*:}") || continue
    case $neigh in *"lladdr $m "*) kept=${c%%:*} n=$((n + 1)) ;; esac
  done
  if [ "$n" -eq 1 ]; then
    pid=$kept
    return 0
  fi
  why="$count network namespaces hold $ip (processes:$found) and the node's neighbour table does not tell which"
  return 1
}

way_cgroup() {
  [ -n "$cid" ] || { why="no container ID"; return 1; }
  pid_in_cgroups /proc && return 0
  why="no process's /proc/PID/cgroup names container $cid"
  return 1
}

# Sets `dev` to the pod's host-side interface: the route to its IP (a routed CNI:
# caliXXXX), or on a bridge the port where the pod's MAC was learned.
find_veth() {
  [ -n "$ip" ] || { why="the pod has no IP"; return 1; }
  route=$(ip -o route get "$ip" 2>&1) || { why="ip route get $ip: $route"; return 1; }
  case $route in *" dev "*) ;; *) why="ip route get $ip names no device: $route"; return 1 ;; esac
  dev=${route#* dev }
  dev=${dev%% *}
  if [ -n "$(ip -o link show master "$dev" 2>/dev/null)" ]; then
    bridge=$dev
    neigh=$(ip neigh show to "$ip" dev "$bridge" 2>/dev/null)
    case $neigh in *lladdr*) ;; *) why="no neighbour entry for $ip on bridge $bridge (no MAC to look up)"; return 1 ;; esac
    mac=${neigh#*lladdr }
    mac=${mac%% *}
    command -v bridge >/dev/null 2>&1 || { why="bridge (iproute2) is not on PATH: cannot read $bridge's forwarding table"; return 1; }
    fdb=$(bridge fdb show br "$bridge" 2>&1) || { why="bridge fdb show br $bridge: $fdb"; return 1; }
    while read -r m _ port _; do
      if [ "$m" = "$mac" ]; then
        dev=$port
        return 0
      fi
    done <<EOF
$fdb
EOF
    why="$ip ($mac) is in no entry of bridge $bridge's forwarding table"
    return 1
  fi
  case $(ip -o -d link show dev "$dev" 2>/dev/null) in
    *" veth "*) return 0 ;;
  esac
  why="the route to $ip leaves by $dev, not a pod's veth: is the pod on this node?"
  return 1
}

# ---- main ----
cid=$1 ip=$2 point=$3
shift 3
if [ -z "$cid" ] && [ -z "$ip" ]; then exec "$@"; fi
if [ "$point" = veth ]; then
  if ! find_veth; then
    echo "kcap-netns: not-found: veth: $why" >&2
    exit 126
  fi
  echo "kcap-netns: way: veth $dev" >&2
  # The capture's interface (the wrapper's IFACE, 7th word of
  # `sh -c SCRIPT kcap CONN TOOL IFACE ...`) becomes the veth.
  i=0
  for a in "$@"; do
    i=$((i + 1))
    if [ "$i" -eq 7 ]; then a=$dev; fi
    set -- "$@" "$a"
  done
  shift "$i"
  exec "$@"
fi
reasons=
for way in crictl ip cgroup; do
  case $way in
    crictl) label=crictl ;;
    ip) label="netns by IP" ;;
    cgroup) label=cgroup ;;
  esac
  pid= why=
  if "way_$way"; then
    echo "kcap-netns: way: $label" >&2
    exec nsenter -t "$pid" -n -- "$@"
  fi
  reasons="$reasons${reasons:+; }$label: $why"
done
echo "kcap-netns: not-found: container $cid, pod IP $ip: $reasons" >&2
exit 126
