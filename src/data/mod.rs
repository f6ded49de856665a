//! The data plane: moving a task's inputs and outputs between its folders and object
//! stores or shared filesystems, on its own thread, resumable from a journal.

pub mod creds;
pub mod engine;
pub mod file_store;
pub mod filter;
pub mod journal;
pub mod plan;
pub mod progress;
pub mod store;
pub mod walk;
pub mod workers;
