//! ctrl's exit codes (PROTOCOL.md §2): the service reads them from the termination log.

/// Why ctrl stopped, with the code the service expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    Success = 0,
    DownloadFailed = 10,
    MountFailed = 11,
    UploadFailed = 12,
    DataAuthCheckFailed = 13,
    DataUnauthorized = 14,
    TokenInvalid = 20,
    ServiceUnreachable = 21,
    ServiceMessageFailed = 22,
    UnixSocketFailed = 23,
    BarrierFailed = 24,
    MetricsFailed = 25,
    InvalidInput = 30,
    CommandFailed = 31,
    FileOperationFailed = 32,
    Other = 40,
}

impl ExitCode {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// A fatal condition: the code to exit with and the line that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: ExitCode,
    pub message: String,
}

impl Failure {
    pub fn new(code: ExitCode, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}
