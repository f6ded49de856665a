//! Thin wrappers around the syscalls the rest of the crate needs. Protocol logic never
//! lives here; each function does one syscall's worth of work and returns `io::Result`.

pub mod beneath;
pub mod dest_dir;
pub mod fd;
pub mod private;
pub mod process;
pub mod pty;
pub mod random;
pub mod scm;
pub mod signals;
pub mod small_file;
pub mod splice;
pub mod termlog;
