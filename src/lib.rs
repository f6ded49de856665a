//! sidewire: the runtime of a workflow task in one static binary.
//!
//! The crate is split by role (see `docs/architecture.md`):
//! - [`proto`]: sans-IO codecs, bytes in and events out, no syscalls (each has a fuzz target);
//! - [`sys`]: thin wrappers around the few syscalls the codecs cannot make;
//! - [`reactor`]: the `mio` loop's timers and signal plumbing;
//! - [`net`]: drivers that move bytes between sockets and codecs (DNS, TCP, TLS, HTTP, WebSocket);
//! - [`data`]: credential files and the regex filter of data specs;
//! - [`ctrl`]: the sidecar; [`agent`]: the user-container side; [`local`]: `sidewire run`;
//!   [`init`]: the init step; [`cli`]: command lines and dispatch.
//!
//! No unsafe code: rustix covers every syscall sidewire makes (pty, SCM_RIGHTS, splice).
#![forbid(unsafe_code)]

pub mod agent;
pub mod cli;
pub mod ctrl;
pub mod data;
pub mod init;
pub mod local;
pub mod net;
pub mod note;
pub mod proto;
pub mod reactor;
pub mod sys;
