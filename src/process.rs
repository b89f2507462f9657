//! Process attribution (`--process`): the text kcap's capture agent gives each
//! packet (ptcpdump's keys, one `Key: value` a line, see
//! [`kcap_pcap::annotation`]), read for the filters (`--pid`, `--pname`,
//! `--container-name`, `--container-id`), the `--print` lines and the comment
//! each sink writes.

use std::sync::Arc;

/// The keys of a process text, in the agent's order.
pub const KEYS: [&str; 10] = [
    "PID",
    "Cmd",
    "Args",
    "ParentPID",
    "ParentCmd",
    "ParentArgs",
    "ContainerName",
    "ContainerId",
    "PodName",
    "PodNamespace",
];

/// The kernel cuts a process's name (comm) at this many bytes.
const COMM_LEN: usize = 15;

/// The value of `key` in a comment of `Key: value` lines.
pub fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k == key).then(|| v.trim())
    })
}

/// A process's name: the last path component of its `Cmd` (`/usr/bin/curl` is
/// `curl`; a comm without a path is itself).
pub fn name(cmd: &str) -> &str {
    cmd.rsplit('/').next().unwrap_or(cmd)
}

/// How a process shows in a line, as ptcpdump prints it: `curl.4242`; the name
/// alone without a PID, `?.4242` without a name.
pub fn label(text: &str, pid_key: &str, cmd_key: &str) -> Option<String> {
    // A PID is a number: "PID: 4242, Cmd: curl" typed in Wireshark is a note.
    let pid =
        field(text, pid_key).filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let name = field(text, cmd_key).map(name);
    match (name, pid) {
        (Some(name), Some(pid)) => Some(format!("{name}.{pid}")),
        (Some(name), None) => Some(name.to_string()),
        (None, Some(pid)) => Some(format!("?.{pid}")),
        (None, None) => None,
    }
}

/// The comment written for a packet with its own process text: that text, then
/// the lines of the source's comment (`PodName: ...\nNodeName: ...`) whose keys it
/// does not have, except the pod's and container's: those describe the captured
/// pod, and the process may be in another pod or in none (the node's own), whose
/// keys the process text has when the node's runtime knows them. So `NodeName`
/// comes from the source, a pod's name only from the process.
pub fn merge_comment(process: &str, source: Option<&str>) -> String {
    const POD_KEYS: [&str; 4] = ["PodName", "PodNamespace", "ContainerName", "ContainerId"];
    let mut merged = process.trim_end_matches('\n').to_string();
    for line in source.unwrap_or("").lines() {
        let key = line.split_once(':').map_or(line, |(k, _)| k);
        if !line.trim().is_empty() && !POD_KEYS.contains(&key) && field(process, key).is_none() {
            merged.push('\n');
            merged.push_str(line);
        }
    }
    merged
}

/// How many process texts a cache keeps answers for (per source).
const CACHED: usize = 16;

/// Answers kept per process text, found by pointer: packets of one process share
/// one `Arc`, so the work runs once per process, not per packet, with a few
/// processes interleaved. Holding the `Arc` keeps its address from being reused
/// while cached; the oldest answer goes past [`CACHED`].
#[derive(Debug)]
struct ByText<T> {
    entries: std::collections::VecDeque<(Arc<str>, T)>,
}

impl<T> Default for ByText<T> {
    fn default() -> Self {
        ByText {
            entries: Default::default(),
        }
    }
}

impl<T> ByText<T> {
    fn get(&mut self, text: &Arc<str>, make: impl FnOnce(&str) -> T) -> &T {
        let at = match self.entries.iter().position(|(t, _)| Arc::ptr_eq(t, text)) {
            Some(at) => at,
            None => {
                if self.entries.len() == CACHED {
                    self.entries.pop_front();
                }
                self.entries.push_back((text.clone(), make(text)));
                self.entries.len() - 1
            }
        };
        &self.entries[at].1
    }
}

/// Per source, its process texts merged with its comment ([`merge_comment`]).
#[derive(Debug, Default)]
pub struct MergedComment {
    merged: ByText<String>,
}

impl MergedComment {
    pub fn get(&mut self, process: &Arc<str>, source: Option<&str>) -> &str {
        self.merged.get(process, |text| merge_comment(text, source))
    }
}

/// `--pid`, `--pname`, `--container-name`, `--container-id`: within one flag any
/// value matches, across flags all must; with any of them, a packet without a
/// process is left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessFilter {
    pub pids: Vec<u32>,
    pub names: Vec<String>,
    pub container_names: Vec<String>,
    /// Lowercase hex prefixes.
    pub container_ids: Vec<String>,
}

impl ProcessFilter {
    pub fn is_empty(&self) -> bool {
        self.pids.is_empty()
            && self.names.is_empty()
            && self.container_names.is_empty()
            && self.container_ids.is_empty()
    }

    /// Whether a packet with this process text (`None`: no process) is kept.
    pub fn keeps(&self, process: Option<&str>) -> bool {
        if self.is_empty() {
            return true;
        }
        let Some(text) = process else {
            return false;
        };
        let any = |wanted: bool, found: Option<&str>, matches: &dyn Fn(&str) -> bool| {
            !wanted || found.is_some_and(matches)
        };
        any(!self.pids.is_empty(), field(text, "PID"), &|pid| {
            pid.parse().is_ok_and(|pid: u32| self.pids.contains(&pid))
        }) && any(!self.names.is_empty(), field(text, "Cmd"), &|cmd| {
            let name = name(cmd);
            let comm = name.get(..COMM_LEN.min(name.len())).unwrap_or(name);
            self.names.iter().any(|n| n == name || n == comm)
        }) && any(
            !self.container_names.is_empty(),
            field(text, "ContainerName"),
            &|c| self.container_names.iter().any(|n| n == c),
        ) && any(
            !self.container_ids.is_empty(),
            field(text, "ContainerId"),
            &|id| {
                let id = id.to_ascii_lowercase();
                self.container_ids
                    .iter()
                    .any(|p| id.starts_with(p.as_str()))
            },
        )
    }

    /// The flags as given, for the summary: `--pname curl --pid 42`.
    pub fn describe(&self) -> String {
        let mut words = Vec::new();
        words.extend(self.pids.iter().map(|p| format!("--pid {p}")));
        words.extend(self.names.iter().map(|n| format!("--pname {n}")));
        words.extend(
            self.container_names
                .iter()
                .map(|n| format!("--container-name {n}")),
        );
        words.extend(
            self.container_ids
                .iter()
                .map(|i| format!("--container-id {i}")),
        );
        words.join(" ")
    }
}

/// [`ProcessFilter::keeps`] for a source's packets, its answers kept per
/// process text.
#[derive(Debug, Default)]
pub struct FilterCache {
    kept: ByText<bool>,
}

impl FilterCache {
    pub fn keeps(&mut self, filter: &ProcessFilter, process: Option<&Arc<str>>) -> bool {
        match process {
            Some(text) => *self.kept.get(text, |text| filter.keeps(Some(text))),
            None => filter.keeps(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CURL: &str = "PID: 4242\nCmd: /usr/bin/curl\nArgs: curl -s http://web\n\
                        ParentPID: 4100\nParentCmd: /bin/sh\nContainerName: client\n\
                        ContainerId: 3f2a9c0b11\nPodName: client-0\nPodNamespace: prod";

    #[test]
    fn the_merged_comment_keeps_the_processs_keys_and_adds_the_sources_others() {
        let source = "PodName: web-0\nPodNamespace: prod\nContainerName: web\nNodeName: node-a";
        assert_eq!(
            merge_comment(CURL, Some(source)),
            format!("{CURL}\nNodeName: node-a")
        );
        // A process the runtime puts in no container is not the captured pod's.
        assert_eq!(
            merge_comment("PID: 7\nCmd: nginx\n", Some(source)),
            "PID: 7\nCmd: nginx\nNodeName: node-a"
        );
        assert_eq!(merge_comment("PID: 7", None), "PID: 7");
        let mut merged = MergedComment::default();
        let text: Arc<str> = Arc::from("PID: 7");
        assert_eq!(
            merged.get(&text, Some("NodeName: n")),
            "PID: 7\nNodeName: n"
        );
        assert_eq!(
            merged.get(&text, Some("NodeName: n")),
            "PID: 7\nNodeName: n"
        );
    }

    #[test]
    fn labels_as_ptcpdump_prints_them() {
        assert_eq!(label(CURL, "PID", "Cmd").as_deref(), Some("curl.4242"));
        assert_eq!(
            label(CURL, "ParentPID", "ParentCmd").as_deref(),
            Some("sh.4100")
        );
        assert_eq!(label("PID: 9", "PID", "Cmd").as_deref(), Some("?.9"));
        assert_eq!(label("NodeName: n", "PID", "Cmd"), None);
    }

    #[test]
    fn filters_or_within_a_flag_and_across_flags() {
        let pid = |p: &[u32]| ProcessFilter {
            pids: p.to_vec(),
            ..Default::default()
        };
        assert!(ProcessFilter::default().keeps(None));
        assert!(pid(&[1, 4242]).keeps(Some(CURL)));
        assert!(!pid(&[1]).keeps(Some(CURL)));
        assert!(!pid(&[4242]).keeps(None));
        let both = ProcessFilter {
            pids: vec![4242],
            names: vec!["wget".into(), "curl".into()],
            container_ids: vec!["3f2a".into()],
            container_names: vec!["client".into()],
        };
        assert!(both.keeps(Some(CURL)));
        let other_name = ProcessFilter {
            names: vec!["wget".into()],
            ..both.clone()
        };
        assert!(!other_name.keeps(Some(CURL)));
        let other_id = ProcessFilter {
            container_ids: vec!["3f2b".into()],
            ..both.clone()
        };
        assert!(!other_id.keeps(Some(CURL)));
        // A flag the text has no key for leaves it out.
        assert!(!other_name.keeps(Some("PID: 4242")));
        assert_eq!(
            both.describe(),
            "--pid 4242 --pname wget --pname curl --container-name client --container-id 3f2a"
        );
    }

    #[test]
    fn a_name_matches_its_comm_cut_at_15_bytes() {
        let text = "PID: 1\nCmd: /opt/bin/kube-controller-manager";
        for name in ["kube-controller-manager", "kube-controller"] {
            let filter = ProcessFilter {
                names: vec![name.into()],
                ..Default::default()
            };
            assert!(filter.keeps(Some(text)), "{name}");
        }
        let filter = ProcessFilter {
            names: vec!["kube".into()],
            ..Default::default()
        };
        assert!(!filter.keeps(Some(text)));
        // The comm itself, as the agent gives it when the path is unknown.
        let comm = ProcessFilter {
            names: vec!["kube-controller".into()],
            ..Default::default()
        };
        assert!(comm.keeps(Some("PID: 1\nCmd: kube-controller")));
    }

    #[test]
    fn the_cache_answers_once_per_text() {
        let filter = ProcessFilter {
            pids: vec![4242],
            ..Default::default()
        };
        let mut cache = FilterCache::default();
        let text: Arc<str> = Arc::from(CURL);
        assert!(cache.keeps(&filter, Some(&text)));
        assert!(cache.keeps(&filter, Some(&text.clone())));
        assert!(!cache.keeps(&filter, Some(&Arc::from("PID: 1"))));
        assert!(!cache.keeps(&filter, None));
        // Interleaved processes are answered from the cache, which stays bounded.
        for i in 0..40 {
            let other: Arc<str> = Arc::from(format!("PID: {i}"));
            assert!(!cache.keeps(&filter, Some(&other)));
            assert!(cache.keeps(&filter, Some(&text)));
        }
        assert!(cache.kept.entries.len() <= CACHED);
    }
}
