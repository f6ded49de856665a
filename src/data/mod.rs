//! State that outlives one ctrl process: the crash-safe journal on the data volume.

pub mod journal;
