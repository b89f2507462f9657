//! Exit codes: one per kind of failure a script may want to tell apart. The table is
//! repeated in `kcap --help` and README.md; keep the three in step.

/// What kcap's process exit status means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    Success = 0,
    Other = 1,
    Usage = 2,
    Connect = 3,
    Auth = 4,
    HostKeyUnknown = 5,
    HostKeyChanged = 6,
    ToolMissing = 7,
    PermissionDenied = 8,
    CaptureRejected = 9,
    OutputFailed = 10,
    NotACapture = 11,
    ConnectionLost = 12,
    KubeNotFound = 13,
    Forbidden = 14,
    KubeUnreachable = 15,
    NoMethod = 16,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}
