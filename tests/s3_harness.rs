//! Tests of the S3 test peers themselves: the real SigV4-checking server
//! ([`s3_server`]), the fault-injecting proxy and the canned fake. The
//! transfer engine's tests rely on these behaving exactly as asserted here.

mod common;
// Only the data-plane tests link the S3 server (and its tokio runtime).
#[path = "common/s3_server.rs"]
mod s3_server;

#[path = "s3_harness/bench.rs"]
mod bench;
#[path = "s3_harness/boto.rs"]
mod boto;
#[path = "s3_harness/fake.rs"]
mod fake;
#[path = "s3_harness/proxy.rs"]
mod proxy;
#[path = "s3_harness/real_server.rs"]
mod real_server;
