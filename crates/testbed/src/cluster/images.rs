//! The image catalogue. There are no image files: an "image" decides what a
//! container's processes find, emulated with real means in the container's own
//! mount namespace (see `container`): programs the image lacks are hidden by
//! bind-mounting an empty, non-executable 0644 file over every copy on the
//! machine (so `exec` and POSIX `command -v` fail as on a real image), extra
//! tools are bind-mounted in, and the user and capabilities are applied by
//! `setpriv`.
//!
//! | image                    | shell | tcpdump | user | default process            |
//! |--------------------------|-------|---------|------|----------------------------|
//! | `kcap.test/app:1`        | yes   | no      | root | traffic server (+ client)  |
//! | `kcap.test/distroless:1` | no    | no      | root | traffic server (+ client)  |
//! | `kcap.test/nonroot:1`    | yes   | yes     | 1000, no capabilities | traffic server (+ client) |
//! | `kcap.test/tcpdump:1`    | yes   | yes     | root | traffic server (+ client)  |
//! | `kcap.test/client:1`     | yes   | no      | root | traffic client only        |
//! | `kcap.test/capture:1`    | yes   | yes, + nsenter, crictl | root | `sh` with stdin, else `sleep infinity` |
//! | `kcap.test/netshoot:1`   | yes   | yes, + nsenter, ip, no crictl (like nicolaka/netshoot) | root | `sh` with stdin, else `sleep infinity` |
//! | `kcap.test/large:1`      | yes   | yes, + nsenter, ip; its pull takes [`LARGE_PULL`] | root | `sh` with stdin, else `sleep infinity` |
//!
//! The traffic server (`traffic.py --pod`) serves HTTP on 8080 and a DNS-like
//! UDP echo on 5353; with `TARGETS="10.244.1.2:8080,..."` in the environment it
//! also calls each target every 200 ms (HTTP GET + a DNS query to port 5353 of
//! the same host, or to `DNS_TARGETS="host:port,..."`). Root images keep the
//! default capability set of containerd (which includes NET_RAW, so tcpdump works
//! in the tcpdump image); the distroless image has python3 (its "app") but no
//! shell and none of the usual utilities.

use std::time::Duration;

/// The pull of `kcap.test/large:1`: long enough to stop kcap while a helper pod
/// or a debug container of it is starting.
pub const LARGE_PULL: Duration = Duration::from_secs(3);

/// Programs of the machine that capture packets.
const CAPTURE_TOOLS: &[&str] = &["tcpdump", "tshark", "dumpcap"];
/// Shells and what else a distroless image lacks. `setpriv` (the runtime's shim)
/// and python3 (the image's application) stay.
const DISTROLESS_MISSING: &[&str] = &[
    "tcpdump", "tshark", "dumpcap", "sh", "dash", "bash", "rbash", "busybox", "ls", "cat", "id",
    "env", "ps", "ip", "ss", "nsenter", "curl", "wget", "nc", "perl", "sleep", "hostname", "mount",
];

/// A container image of the catalogue.
#[derive(Debug)]
pub(crate) struct Image {
    pub name: &'static str,
    /// sha256 hex of the image ID (stable: the sha256 of the name).
    pub digest: &'static str,
    /// Programs the image does not have.
    pub missing: &'static [&'static str],
    /// Whether the node's `crictl` is on PATH (in /usr/local/sbin).
    pub crictl: bool,
    /// The image's user (`USER` in a Dockerfile).
    pub uid: u32,
    /// How long pulling it takes before a pod or an ephemeral container of it
    /// starts (the pods' images are on the nodes already).
    pub pull: Duration,
    pub default: DefaultProcess,
}

/// What a container runs when its spec has neither command nor args.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DefaultProcess {
    /// `traffic.py --pod`: servers, plus a client when TARGETS is set.
    Traffic,
    /// `traffic.py --pod --no-serve`: the client only.
    Client,
    /// An interactive shell if stdin is attached, else sleep forever.
    Shell,
}

pub(crate) const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub(crate) const CATALOGUE: &[Image] = &[
    Image {
        name: "kcap.test/app:1",
        digest: "5376115dbc93793bc08e7134e266e24d047d54ba71fcdabcb2195e1739380aea",
        missing: CAPTURE_TOOLS,
        crictl: false,
        uid: 0,
        pull: Duration::ZERO,
        default: DefaultProcess::Traffic,
    },
    Image {
        name: "kcap.test/distroless:1",
        digest: "4dd569880aa386b9afa064d5e03239b65a926f9f69aa07c86449b34911d28d70",
        missing: DISTROLESS_MISSING,
        crictl: false,
        uid: 0,
        pull: Duration::ZERO,
        default: DefaultProcess::Traffic,
    },
    Image {
        name: "kcap.test/nonroot:1",
        digest: "e7787cb58f3121626dfc44724c7a64b1799a128046ae7eaad01d2e83803b0989",
        missing: &[],
        crictl: false,
        uid: 1000,
        pull: Duration::ZERO,
        default: DefaultProcess::Traffic,
    },
    Image {
        name: "kcap.test/tcpdump:1",
        digest: "26ee54e203962bc2d458909ef205172985c443bd98c1f42a9a18659dbef8e2d5",
        missing: &[],
        crictl: false,
        uid: 0,
        pull: Duration::ZERO,
        default: DefaultProcess::Traffic,
    },
    Image {
        name: "kcap.test/capture:1",
        digest: "69b805a9af010025ea2a19a67562ea236007cca431cae835a38a07f32bbbabd8",
        missing: &[],
        crictl: true,
        uid: 0,
        pull: Duration::ZERO,
        default: DefaultProcess::Shell,
    },
    Image {
        name: "kcap.test/netshoot:1",
        digest: "14fcd2adbf17dd5c92a83970d111e8735fdec907adf34c322e4aeb6779bebf6c",
        missing: &[],
        crictl: false,
        uid: 0,
        pull: Duration::ZERO,
        default: DefaultProcess::Shell,
    },
    Image {
        name: "kcap.test/client:1",
        digest: "56f317c67584b6ed7f58ca9e77061e7ce8fc6be46b1e131709bfc97ee366e1d1",
        missing: CAPTURE_TOOLS,
        crictl: false,
        uid: 0,
        pull: Duration::ZERO,
        default: DefaultProcess::Client,
    },
    Image {
        name: "kcap.test/large:1",
        digest: "251c0e82ff595a1d58c40e2e29b7a9d4e20e65ce97704c8ee7ddeaa7a2d5a7d4",
        missing: &[],
        crictl: false,
        uid: 0,
        pull: LARGE_PULL,
        default: DefaultProcess::Shell,
    },
];

/// Looks an image up by name; `docker.io/`-less names only, as in the table.
pub(crate) fn find(name: &str) -> Option<&'static Image> {
    CATALOGUE.iter().find(|i| i.name == name)
}

/// Names of every image of the catalogue.
pub fn names() -> Vec<&'static str> {
    CATALOGUE.iter().map(|i| i.name).collect()
}

impl Image {
    /// The image ID as kubelet reports it: `kcap.test/app@sha256:<hex>`.
    pub(crate) fn image_ref(&self) -> String {
        let repo = self.name.rsplit_once(':').map_or(self.name, |(r, _)| r);
        format!("{repo}@sha256:{}", self.digest)
    }

    pub(crate) fn home(uid: u32) -> &'static str {
        if uid == 0 { "/root" } else { "/tmp" }
    }
}
