#!/usr/bin/python3
"""crictl for kcap-testbed nodes.

Answers like crictl talking to containerd, from the JSON state file the test
bed's container runtime keeps up to date: `inspect`, `inspectp`, `ps`, `pods`,
`version`. Only containers of this node are visible.
"""
import json
import os
import re
import sys
import time

STATE_FILE = "@STATE@"
NODE = "@NODE@"
ZERO_TIME = "0001-01-01T00:00:00Z"


def fatal(msg):
    sys.stderr.write('time="%s" level=fatal msg=%s\n' % (rfc3339(time.time_ns()), json.dumps(msg)))
    sys.exit(1)


def rfc3339(ns):
    secs, frac = divmod(int(ns), 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + ".%09dZ" % frac


def ago(ns):
    d = max(0, time.time() - ns / 1e9)
    for unit, size in (("hours", 3600), ("minutes", 60)):
        if d >= size:
            n = int(d // size)
            return "%d %s ago" % (n, unit if n != 1 else unit[:-1])
    return "%d seconds ago" % int(d) if d >= 1 else "Less than a second ago"


def load():
    try:
        with open(STATE_FILE) as f:
            state = json.load(f)
    except (OSError, ValueError):
        state = {"pods": [], "containers": []}
    pods = [p for p in state.get("pods", []) if p["node"] == NODE]
    containers = [c for c in state.get("containers", []) if c["node"] == NODE]
    return pods, containers


def running(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return not f.read().rsplit(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return False


def cstate(c):
    return "CONTAINER_RUNNING" if running(c["pid"]) else "CONTAINER_EXITED"


def resolve(items, ref, what):
    ref = ref.split("://", 1)[-1]
    found = [i for i in items if i["id"].startswith(ref)] if ref else []
    if len(found) == 1:
        return found[0]
    if not found:
        fatal('getting the status of the %s "%s": rpc error: code = NotFound desc = '
              'an error occurred when try to find %s "%s": not found' % (what, ref, what, ref))
    fatal("%s ID %s is ambiguous" % (what, ref))


def labels(c):
    return {
        "io.kubernetes.container.name": c["name"],
        "io.kubernetes.pod.name": c["pod_name"],
        "io.kubernetes.pod.namespace": c["pod_namespace"],
        "io.kubernetes.pod.uid": c["pod_uid"],
    }


def namespaces(pid, netns):
    ns = [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
    if netns:
        ns.append({"type": "network", "path": netns})
    return ns


def inspect(c, pod):
    st = cstate(c)
    return {
        "status": {
            "id": c["id"],
            "metadata": {"attempt": 0, "name": c["name"]},
            "state": st,
            "createdAt": rfc3339(c["created_ns"]),
            "startedAt": rfc3339(c["created_ns"]),
            "finishedAt": ZERO_TIME if st == "CONTAINER_RUNNING" else rfc3339(time.time_ns()),
            "exitCode": 0,
            "image": {"annotations": {}, "image": c["image"], "runtimeHandler": "", "userSpecifiedImage": ""},
            "imageRef": c["image_ref"],
            "reason": "", "message": "",
            "labels": labels(c),
            "annotations": {"io.kubernetes.container.restartCount": "0"},
            "mounts": [],
            "logPath": "/var/log/pods/%s_%s_%s/%s/0.log" % (
                c["pod_namespace"], c["pod_name"], c["pod_uid"], c["name"]),
            "resources": None,
        },
        "info": {
            "sandboxID": c["pod_id"],
            "pid": c["pid"],
            "removing": False,
            "snapshotKey": c["id"],
            "snapshotter": "overlayfs",
            "runtimeType": "io.containerd.runc.v2",
            "runtimeOptions": {"systemd_cgroup": True},
            "config": {
                "metadata": {"name": c["name"]},
                "image": {"image": c["image"]},
                "envs": [{"key": k, "value": v} for k, v in c.get("env", [])],
                "labels": labels(c),
                "linux": {"security_context": {"privileged": c.get("privileged", False)}},
            },
            "runtimeSpec": {
                "ociVersion": "1.1.0",
                "process": {
                    "user": {"uid": c.get("uid", 0), "gid": c.get("uid", 0)},
                    "args": c.get("argv", []),
                    "cwd": "/",
                },
                "root": {"path": "rootfs"},
                "hostname": pod["name"] if pod and not pod.get("host_network") else "",
                "linux": {"namespaces": namespaces(c["pid"], pod and pod.get("netns"))},
            },
        },
    }


def inspectp(p):
    return {
        "status": {
            "id": p["id"],
            "metadata": {"attempt": 0, "name": p["name"], "namespace": p["namespace"], "uid": p["uid"]},
            "state": "SANDBOX_READY",
            "createdAt": rfc3339(p["created_ns"]),
            "network": {"additionalIps": [], "ip": p["ip"]},
            "linux": {"namespaces": {"options": {
                "ipc": "POD", "network": "NODE" if p.get("host_network") else "POD",
                "pid": "NODE" if p.get("host_pid") else "CONTAINER", "targetId": ""}}},
            "labels": {"io.kubernetes.pod.name": p["name"], "io.kubernetes.pod.namespace": p["namespace"],
                       "io.kubernetes.pod.uid": p["uid"]},
            "annotations": {},
            "runtimeHandler": "",
        },
        "info": {
            "pid": p.get("pid", 0),
            "runtimeSpec": {"linux": {"namespaces": namespaces(p.get("pid", 0), p.get("netns"))}},
        },
    }


def template(tmpl, obj):
    def lookup(m):
        v = obj
        for key in m.group(1).split(".")[1:]:
            v = v.get(key) if isinstance(v, dict) else None
        return json.dumps(v) if isinstance(v, (dict, list)) else ("<no value>" if v is None else str(v))
    return re.sub(r"\{\{\s*(\.[\w.]*)\s*\}\}", lookup, tmpl)


def output(objs, fmt, tmpl):
    for o in objs:
        if fmt in ("go-template", "template"):
            sys.stdout.write(template(tmpl or "", o))
        else:
            print(json.dumps(o, indent=2))


def table(header, rows):
    widths = [max([20] + [len(r[i]) + 3 for r in [header] + rows]) for i in range(len(header))]
    for r in [header] + rows:
        print("".join(v.ljust(widths[i]) if i + 1 < len(r) else v for i, v in enumerate(r)))


def parse(args, flags, bools):
    """Splits args into {flag: value} and positionals."""
    opts, pos, i = {}, [], 0
    while i < len(args):
        a = args[i]
        if a.startswith("-") and a != "-":
            name, _, val = a.partition("=")
            if name in bools:
                opts[bools[name]] = True
            elif name in flags:
                if not _:
                    i += 1
                    val = args[i] if i < len(args) else ""
                opts[flags[name]] = val
            else:
                fatal("flag provided but not defined: %s" % name)
        else:
            pos.append(a)
        i += 1
    return opts, pos


GLOBAL_FLAGS = {"-r": "r", "--runtime-endpoint": "r", "-i": "i", "--image-endpoint": "i",
                "-t": "t", "--timeout": "t", "-c": "c", "--config": "c"}
GLOBAL_BOOLS = {"-D": "debug", "--debug": "debug"}


def main(argv):
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        name = argv[i].split("=", 1)[0]
        if name in GLOBAL_FLAGS and "=" not in argv[i]:
            i += 1
        elif name not in GLOBAL_FLAGS and name not in GLOBAL_BOOLS:
            if name in ("-v", "--version"):
                print("crictl version v1.30.0")
                return
            fatal("flag provided but not defined: %s" % name)
        i += 1
    if i >= len(argv):
        print("usage: crictl [global options] command [command options] [arguments...]\n"
              "commands: inspect, inspectp, ps, pods, version")
        return
    cmd, args = argv[i], argv[i + 1:]
    pods, containers = load()
    by_id = {p["id"]: p for p in pods}
    out_flags = {"-o": "o", "--output": "o", "--template": "template"}
    if cmd == "inspect":
        opts, ids = parse(args, out_flags, {"-q": "q", "--quiet": "q"})
        if not ids:
            fatal("ID cannot be empty")
        cs = [resolve(containers, r, "container") for r in ids]
        output([inspect(c, by_id.get(c["pod_id"])) for c in cs], opts.get("o"), opts.get("template"))
    elif cmd == "inspectp":
        opts, ids = parse(args, out_flags, {"-q": "q", "--quiet": "q"})
        if not ids:
            fatal("ID cannot be empty")
        output([inspectp(resolve(pods, r, "sandbox")) for r in ids], opts.get("o"), opts.get("template"))
    elif cmd == "ps":
        opts, _ = parse(args, {"-o": "o", "--output": "o", "--name": "name", "-p": "pod", "--pod": "pod",
                               "--label": "label", "--state": "state", "--image": "image", "--id": "id"},
                        {"-a": "a", "--all": "a", "-q": "q", "--quiet": "q", "--no-trunc": "full",
                         "-v": "v", "--verbose": "v", "-l": "l", "--latest": "l"})
        sel = [c for c in containers if opts.get("a") or cstate(c) == "CONTAINER_RUNNING"]
        if "name" in opts:
            sel = [c for c in sel if re.search(opts["name"], c["name"])]
        if "pod" in opts:
            sel = [c for c in sel if c["pod_id"].startswith(opts["pod"])]
        if "id" in opts:
            sel = [c for c in sel if c["id"].startswith(opts["id"])]
        if "label" in opts:
            k, _, v = opts["label"].partition("=")
            sel = [c for c in sel if labels(c).get(k) == v]
        if opts.get("q"):
            for c in sel:
                print(c["id"])
        elif opts.get("o") in ("json", "yaml"):
            print(json.dumps({"containers": [{
                "id": c["id"], "podSandboxId": c["pod_id"],
                "metadata": {"name": c["name"], "attempt": 0},
                "image": {"image": c["image"]}, "imageRef": c["image_ref"],
                "state": cstate(c), "createdAt": str(c["created_ns"]),
                "labels": labels(c), "annotations": {}} for c in sel]}, indent=2))
        else:
            n = 64 if opts.get("full") else 13
            table(["CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID", "POD"],
                  [[c["id"][:n], c["image_ref"].rsplit(":", 1)[-1][:n], ago(c["created_ns"]),
                    "Running" if cstate(c) == "CONTAINER_RUNNING" else "Exited", c["name"], "0",
                    c["pod_id"][:n], c["pod_name"]] for c in sel])
    elif cmd == "pods":
        opts, _ = parse(args, {"-o": "o", "--output": "o", "--name": "name", "--namespace": "ns",
                               "--label": "label", "--id": "id"},
                        {"-q": "q", "--quiet": "q", "--no-trunc": "full", "-v": "v", "--verbose": "v"})
        sel = pods
        if "name" in opts:
            sel = [p for p in sel if re.search(opts["name"], p["name"])]
        if "ns" in opts:
            sel = [p for p in sel if re.search(opts["ns"], p["namespace"])]
        if "id" in opts:
            sel = [p for p in sel if p["id"].startswith(opts["id"])]
        if opts.get("q"):
            for p in sel:
                print(p["id"])
        elif opts.get("o") in ("json", "yaml"):
            print(json.dumps({"items": [inspectp(p)["status"] for p in sel]}, indent=2))
        else:
            n = 64 if opts.get("full") else 13
            table(["POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT", "RUNTIME"],
                  [[p["id"][:n], ago(p["created_ns"]), "Ready", p["name"], p["namespace"], "0",
                    "(default)"] for p in sel])
    elif cmd == "version":
        print("Version:  0.1.0\nRuntimeName:  containerd\nRuntimeVersion:  v1.7.24\nRuntimeApiVersion:  v1")
    else:
        fatal("command %s is not supported by the kcap-testbed crictl" % json.dumps(cmd))


if __name__ == "__main__":
    if os.geteuid() != 0:
        fatal('validate service connection: validate CRI v1 runtime API for endpoint '
              '"unix:///run/containerd/containerd.sock": rpc error: code = Unavailable desc = '
              'connection error: desc = "transport: Error while dialing: dial unix '
              '/run/containerd/containerd.sock: connect: permission denied"')
    main(sys.argv[1:])
