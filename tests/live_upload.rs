//! Outputs uploaded while the command runs (`-uploadWhileRunning`): `sidewire run` against
//! the real S3 server behind the logging proxy, watched while the command still runs.

mod common;
#[path = "common/s3_server.rs"]
mod s3_server;
#[path = "data_plane/support.rs"]
mod support;

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::fault_proxy::{Exchange, Fault, FaultPlan, FaultProxy, Rule};
use s3_server::S3Server;
use support::*;

const BIG: u64 = 64 * MIB;

/// A run in the background; killed if the test fails before it ends.
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Running {
    /// Waits at most two minutes for the run to end, then takes its output.
    fn finish(mut self) -> Output {
        let ended = wait_for(Duration::from_secs(120), || {
            self.0
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
        });
        assert!(ended, "sidewire run did not end");
        let child = self.0.take().expect("a child");
        child.wait_with_output().expect("sidewire run")
    }
}

/// `sidewire run` with one output to `s3://bucket/<prefix>`, started in the background.
fn start_run(workdir: &Path, prefix: &str, upload_while_running: u32, script: &str) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_sidewire"))
        .arg("run")
        .arg(format!("-workdir={}", workdir.display()))
        .arg(format!("-output=url:s3://bucket/{prefix},"))
        .arg(format!("-uploadWhileRunning={upload_while_running}"))
        .args(["--", "sh", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sidewire run");
    Running(Some(child))
}

/// Waits for `done` (checked every 20 ms) at most `limit`; whether it came.
fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if done() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

fn stored_size(s3: &S3Server, key: &str) -> Option<u64> {
    fs::metadata(s3.object_path("bucket", key))
        .ok()
        .map(|m| m.len())
}

/// The proxy logs an exchange as it relays the answer: time for the sidecar to read that
/// answer and journal it before the test ends the command.
fn settle_journal() {
    thread::sleep(Duration::from_millis(500));
}

fn touching<'a>(log: &'a [Exchange], name: &str) -> Vec<&'a Exchange> {
    log.iter().filter(|e| e.target.contains(name)).collect()
}

/// A command writes a large file, sleeps, then writes a small one and exits; the large
/// file is home before the command ends, and the upload after it sends only the small one.
fn large_file_then_small(upload_while_running: u32) -> (Output, Vec<Exchange>, usize, bool) {
    let s3 = S3Server::start(KEY, SECRET);
    s3.create_bucket("bucket");
    let proxy = FaultProxy::start(s3.port, FaultPlan::shared(1));
    let dir = temp_dir(&format!("live-{upload_while_running}"));
    write_credentials(&dir, "bucket", &proxy.endpoint(), SECRET);
    let out = dir.join("output");
    // The large file appears whole (renamed); the command then sleeps until told to go on.
    let script = format!(
        "head -c {BIG} /dev/urandom > {o}/big.bin.tmp && mv {o}/big.bin.tmp {o}/big.bin && \
         while [ ! -e {d}/go ]; do sleep 0.05; done; printf small > {o}/small.bin",
        o = out.display(),
        d = dir.display()
    );
    let child = start_run(&dir, "live", upload_while_running, &script);
    let written = wait_for(Duration::from_secs(60), || out.join("big.bin").exists());
    assert!(written, "the command never wrote big.bin");
    // With the flag, wait until the large file is home; without, long enough that it
    // would be (it settles after 1 s and is seen within another).
    let limit = if upload_while_running > 0 { 60 } else { 5 };
    // Home means the store answered the multipart upload's completion.
    let home_early = wait_for(Duration::from_secs(limit), || {
        proxy.log().iter().any(|e| {
            e.method == "POST" && e.target.contains("big.bin?uploadId=") && e.status == Some(200)
        })
    });
    if home_early {
        settle_journal();
    }
    let before_end = proxy.log().len();
    fs::write(dir.join("go"), b"").unwrap();
    let run = child.finish();
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
    assert_eq!(stored_size(&s3, "live/big.bin"), Some(BIG));
    assert_eq!(stored_size(&s3, "live/small.bin"), Some(5));
    assert!(same_content(
        &out.join("big.bin"),
        &s3.object_path("bucket", "live/big.bin")
    ));
    (run, proxy.log(), before_end, home_early)
}

#[test]
fn with_the_flag_a_large_early_output_is_home_before_the_command_ends() {
    let (run, log, before_end, home_early) = large_file_then_small(1);
    assert!(home_early, "big.bin was not uploaded while the command ran");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("Uploaded 1 files (64.0 MiB) of s3://bucket/live while the command runs"),
        "{stdout}"
    );
    // No progress lines from the passes, and the final upload still reports.
    assert!(!stdout.contains("Uploading s3://bucket/live: "), "{stdout}");
    assert!(stdout.contains("All Outputs Uploaded"), "{stdout}");
    // Every part of the large file went once, all before the command ended; after it only
    // the small file went up.
    let big = touching(&log, "big.bin");
    let parts = big
        .iter()
        .filter(|e| e.target.contains("partNumber="))
        .count();
    assert_eq!(parts as u64, BIG / (8 * MIB), "{big:#?}");
    assert!(
        log[..before_end]
            .iter()
            .any(|e| e.target.contains("big.bin")),
        "{log:#?}"
    );
    let after: Vec<_> = log[before_end..]
        .iter()
        .filter(|e| e.method != "GET")
        .collect();
    assert!(
        after.iter().all(|e| e.target.contains("small.bin")),
        "{after:#?}"
    );
    assert_eq!(
        after.iter().filter(|e| e.method == "PUT").count(),
        1,
        "{after:#?}"
    );
    assert!(touching(&log[..before_end], "small.bin").is_empty());
}

#[test]
fn without_the_flag_both_outputs_go_after_the_command() {
    let (run, log, before_end, home_early) = large_file_then_small(0);
    assert!(!home_early, "big.bin went up while the command ran");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(!stdout.contains("while the command runs"), "{stdout}");
    assert_eq!(before_end, 0, "{log:#?}");
    assert_eq!(touching(&log, "small.bin").len(), 1, "{log:#?}");
    assert!(!touching(&log, "big.bin").is_empty());
}

/// A file the command keeps appending to is not uploaded until it stayed unchanged for the
/// flag's time; it then goes up once, whole, before the command ends.
#[test]
fn a_file_still_being_written_waits_until_it_settles() {
    let s3 = S3Server::start(KEY, SECRET);
    s3.create_bucket("bucket");
    let proxy = FaultProxy::start(s3.port, FaultPlan::shared(1));
    let dir = temp_dir("live-growing");
    write_credentials(&dir, "bucket", &proxy.endpoint(), SECRET);
    let out = dir.join("output");
    // Appends every 0.3 s for about 4 s: never quiet for the 2 s the flag asks.
    let script = format!(
        "for i in $(seq 1 14); do printf 0123456789 >> {o}/grow.log; sleep 0.3; done; \
         touch {d}/written; while [ ! -e {d}/go ]; do sleep 0.05; done",
        o = out.display(),
        d = dir.display()
    );
    let child = start_run(&dir, "grow", 2, &script);
    let written = wait_for(Duration::from_secs(30), || dir.join("written").exists());
    assert!(written, "the command did not finish writing");
    assert!(
        touching(&proxy.log(), "grow.log").is_empty(),
        "grow.log went up while it changed: {:#?}",
        proxy.log()
    );
    let home = wait_for(Duration::from_secs(30), || {
        let put = |e: &Exchange| e.method == "PUT" && e.status == Some(200);
        touching(&proxy.log(), "grow.log").into_iter().any(put)
    });
    assert!(home, "grow.log was not uploaded once settled");
    assert_eq!(stored_size(&s3, "grow/grow.log"), Some(140));
    settle_journal();
    let before_end = proxy.log().len();
    fs::write(dir.join("go"), b"").unwrap();
    let run = child.finish();
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
    let log = proxy.log();
    let puts: Vec<_> = touching(&log, "grow.log")
        .into_iter()
        .filter(|e| e.method == "PUT")
        .collect();
    assert_eq!(puts.len(), 1, "{log:#?}");
    assert!(
        touching(&log[before_end..], "grow.log").is_empty(),
        "{log:#?}"
    );
}

/// The command ends while a pass is half way through the large file: the pass is
/// cancelled, and the upload after the command sends only the parts it did not finish.
#[test]
fn a_pass_cut_short_by_the_end_of_the_command_leaves_only_its_unfinished_parts() {
    let s3 = S3Server::start(KEY, SECRET);
    s3.create_bucket("bucket");
    let plan = FaultPlan::shared(1);
    let proxy = FaultProxy::start(s3.port, plan.clone());
    // Four of the eight parts hang long enough that the command ends first.
    plan.lock()
        .unwrap()
        .push(Rule::next(4, Fault::Stall(Duration::from_secs(8))).target("partNumber="));
    let dir = temp_dir("live-cut");
    write_credentials(&dir, "bucket", &proxy.endpoint(), SECRET);
    let out = dir.join("output");
    let script = format!(
        "head -c {BIG} /dev/urandom > {o}/big.bin.tmp && mv {o}/big.bin.tmp {o}/big.bin && \
         while [ ! -e {d}/go ]; do sleep 0.05; done",
        o = out.display(),
        d = dir.display()
    );
    let child = start_run(&dir, "cut", 1, &script);
    let parts_done = |log: &[Exchange]| {
        log.iter()
            .filter(|e| e.target.contains("partNumber=") && e.status == Some(200))
            .count()
    };
    let half = wait_for(Duration::from_secs(60), || parts_done(&proxy.log()) == 4);
    assert!(half, "{:#?}", proxy.log());
    settle_journal();
    let before_end = proxy.log().len();
    fs::write(dir.join("go"), b"").unwrap();
    let run = child.finish();
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(!stdout.contains("while the command runs"), "{stdout}");
    assert!(same_content(
        &out.join("big.bin"),
        &s3.object_path("bucket", "cut/big.bin")
    ));
    let log = proxy.log();
    let after = &log[before_end..];
    let started = |l: &[Exchange]| {
        l.iter()
            .filter(|e| e.method == "POST" && e.target.contains("?uploads"))
            .count()
    };
    // One multipart upload, resumed (its parts listed) rather than started again.
    assert_eq!(started(&log), 1, "{log:#?}");
    assert!(
        after
            .iter()
            .any(|e| e.method == "GET" && e.target.contains("uploadId=")),
        "{after:#?}"
    );
    let resent = after
        .iter()
        .filter(|e| e.method == "PUT" && e.target.contains("partNumber="))
        .count();
    assert_eq!(resent, 4, "{after:#?}");
}
