//! The request log: one JSON line per authenticated request that may change the
//! cluster (POST, PUT, PATCH, DELETE), runs something in it (exec, attach, also as a
//! WebSocket upgrade) or asks the authorizer (SelfSubjectAccessReview), appended to a
//! file as the reply is sent. Reads (GET, watch) are not logged. Tests read it back
//! with [`read`] to prove what a client did, or that it did nothing.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One logged request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiRequest {
    /// `admin` or `restricted` (the token's user).
    pub user: String,
    /// The HTTP method: `POST`, `PUT`, `PATCH`, `DELETE`, or `GET` for a WebSocket
    /// exec/attach.
    pub method: String,
    pub path: String,
    /// The raw query string (`command=tcpdump&command=-w&...`), "" if none.
    pub query: String,
    pub kind: RequestKind,
    /// The authorizer's verb (`create`, `patch`, `update`, `delete`,
    /// `deletecollection`; `create` for exec/attach); "" when the path names no
    /// resource this server serves.
    pub verb: String,
    /// API group, "" for the core group.
    pub group: String,
    /// Plural resource (`pods`), "" when the path names none.
    pub resource: String,
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// The HTTP status answered (101 for an exec/attach that started; 403 for a
    /// refused one, which changed nothing).
    pub status: u16,
    /// For a [`RequestKind::AccessReview`]: what was asked, and the answer.
    pub review: Option<AccessQuestion>,
}

/// What a request is, for telling questions from changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestKind {
    /// POST, PUT, PATCH or DELETE of an object (it changed something if `status` is
    /// 2xx).
    Change,
    /// exec or attach: runs or joins a process in a container.
    Exec,
    /// A SelfSubjectAccessReview: only asks the authorizer; changes nothing.
    AccessReview,
}

/// The attributes a SelfSubjectAccessReview asked about, and whether it was allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessQuestion {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// For `nonResourceAttributes`: the path asked about (resource fields empty).
    pub path: Option<String>,
    pub allowed: bool,
}

impl ApiRequest {
    /// Whether this request could have changed the cluster or run a process: not a
    /// question, and not refused (a 4xx/5xx reply changed nothing).
    pub fn acted(&self) -> bool {
        self.kind != RequestKind::AccessReview && self.status < 400
    }
}

/// Why the log could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("read the API request log {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("line {line} of the API request log {path} is not a request")]
    Parse {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
}

/// Every complete entry of the log at `path`, oldest first (a line still being
/// written is left out). A log not created yet is empty.
pub fn read(path: &Path) -> Result<Vec<ApiRequest>, ReadError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ReadError::Io {
                path: path.into(),
                source,
            });
        }
    };
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|source| ReadError::Parse {
                path: path.into(),
                line: i + 1,
                source,
            })
        })
        .collect()
}

/// The server's writer (or nothing, without a log path).
pub(crate) struct RequestLog {
    file: Option<(PathBuf, Mutex<File>)>,
}

impl RequestLog {
    /// Opens (creating it if needed) the log for appending.
    pub fn open(path: Option<&Path>) -> std::io::Result<RequestLog> {
        let file = match path {
            Some(p) => {
                let f = OpenOptions::new().create(true).append(true).open(p)?;
                Some((p.to_path_buf(), Mutex::new(f)))
            }
            None => None,
        };
        Ok(RequestLog { file })
    }

    /// Appends one entry as a single write, so concurrent readers see whole lines.
    pub fn record(&self, entry: &ApiRequest) {
        let Some((path, file)) = &self.file else {
            return;
        };
        let mut line = serde_json::to_string(entry).expect("a request serializes");
        line.push('\n');
        let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = f.write_all(line.as_bytes()) {
            tracing::warn!(error = %e, path = %path.display(), "cannot append to the request log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(verb: &str) -> ApiRequest {
        ApiRequest {
            user: "admin".into(),
            method: "DELETE".into(),
            path: "/api/v1/namespaces/prod/pods/x".into(),
            query: String::new(),
            kind: RequestKind::Change,
            verb: verb.into(),
            group: String::new(),
            resource: "pods".into(),
            subresource: None,
            namespace: Some("prod".into()),
            name: Some("x".into()),
            status: 200,
            review: None,
        }
    }

    #[test]
    fn appends_lines_and_reads_back_only_complete_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api-requests.log");
        assert_eq!(read(&path).unwrap(), vec![]);
        let log = RequestLog::open(Some(&path)).unwrap();
        log.record(&entry("delete"));
        log.record(&entry("deletecollection"));
        assert_eq!(
            read(&path).unwrap(),
            vec![entry("delete"), entry("deletecollection")]
        );
        // A writer caught mid-line: the partial entry is not reported.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"user\":")
            .unwrap();
        assert_eq!(read(&path).unwrap().len(), 2);
        let line = std::fs::read_to_string(&path).unwrap();
        assert!(
            line.starts_with(r#"{"user":"admin","method":"DELETE","path":"/api/v1/namespaces/prod/pods/x","query":"","kind":"change","verb":"delete""#),
            "{line}"
        );
    }

    #[test]
    fn a_broken_line_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "{}\n").unwrap();
        let e = read(&path).unwrap_err();
        assert!(matches!(e, ReadError::Parse { line: 1, .. }), "{e:?}");
    }
}
