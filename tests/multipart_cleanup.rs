//! Multipart uploads left behind by a sidecar: a resumed upload whose store pages its
//! parts forever, and uploads given up on (a file changed since its parts were sent, an
//! upload that failed for good), which are aborted so the store does not keep their parts.
//! Against the real S3 server (s3s-fs) through a fault proxy, or a canned store, with the
//! journal a previous `sidewire run` left.

mod common;
#[path = "common/s3_server.rs"]
mod s3_server;
#[path = "data_plane/support.rs"]
mod support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::fake_s3::{Canned, FakeS3};
use common::fault_proxy::{Fault, FaultPlan, FaultProxy, Rule};
use s3_server::S3Server;
use sidewire::data::journal::{Direction, Journal, MultipartRecord};
use support::*;

/// `sidewire run` uploading `output/` with `spec`, in a process group of its own.
fn start_run(workdir: &Path, spec: &str) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    Command::new(env!("CARGO_BIN_EXE_sidewire"))
        .arg("run")
        .arg(format!("-workdir={}", workdir.display()))
        .arg(format!("-output={spec}"))
        .args(["--", "true"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("sidewire run")
}

/// `sidewire run` uploading `output/` with `spec`, killed if it runs past `limit`.
fn run_within(workdir: &Path, spec: &str, limit: Duration) -> (Output, bool) {
    let mut child = start_run(workdir, spec);
    let started = Instant::now();
    let mut hung = false;
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > limit {
            hung = true;
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (child.wait_with_output().expect("output"), hung)
}

/// Records in the journal of `workdir` that `rel` of the upload `spec` is being sent as
/// multipart upload `upload_id`, as a sidecar killed mid-upload leaves it.
fn journal_multipart(workdir: &Path, spec: &str, rel: &str, upload_id: &str) {
    let meta = std::fs::metadata(workdir.join("output").join(rel)).unwrap();
    let journal = Journal::open(&workdir.join("journal.db")).unwrap();
    let t = journal.transfer(Direction::Upload, spec).unwrap();
    let record = MultipartRecord {
        upload_id: upload_id.into(),
        part_size: sidewire::data::plan::part_size(meta.len()),
        size: meta.len(),
        mtime_ns: sidewire::data::walk::mtime_ns(meta.mtime(), meta.mtime_nsec()),
        // Without a checksum, the upload goes on at once (no pass over the file first).
        crc64nvme: None,
    };
    journal.start_multipart(t, rel, &record).unwrap();
}

#[test]
fn a_parts_listing_that_repeats_its_marker_fails_the_upload_instead_of_paging_forever() {
    let fake = FakeS3::start();
    let page = "<ListPartsResult><IsTruncated>true</IsTruncated>\
        <NextPartNumberMarker>1</NextPartNumberMarker>\
        <Part><PartNumber>1</PartNumber><ETag>\"e1\"</ETag><Size>8388608</Size></Part>\
        </ListPartsResult>";
    fake.route("GET", "uploadId=stale", Canned::xml(200, page));
    let dir = temp_dir("parts-marker");
    write_credentials(&dir, "bucket", &fake.endpoint(), SECRET);
    write_pattern(&dir.join("output/big.bin"), 9 * MIB, 4);
    let spec = "url:s3://bucket/r,";
    journal_multipart(&dir, spec, "big.bin", "stale");

    let (out, hung) = run_within(&dir, spec, Duration::from_secs(30));
    assert!(
        !hung,
        "the upload pages its parts forever: {}",
        describe(&out)
    );
    assert_eq!(out.status.code(), Some(12), "{}", describe(&out));
    assert!(
        describe(&out).contains("<NextPartNumberMarker> 1 does not advance past 1"),
        "{}",
        describe(&out)
    );
    let listings = fake
        .requests()
        .iter()
        .filter(|(method, target)| method == "GET" && target.contains("uploadId=stale"))
        .count();
    assert_eq!(listings, 2, "{:?}", fake.requests());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The ids of the multipart uploads s3s-fs holds, with or without parts (it keeps each
/// as `.upload-<id>.json` and `.upload_id-<id>.part-<n>` files in its folder, and does not
/// implement ListMultipartUploads).
fn uploads_left(s3: &S3Server) -> Vec<String> {
    let ids: std::collections::BTreeSet<String> = std::fs::read_dir(&s3.root)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let id = name
                .strip_prefix(".upload-")
                .and_then(|rest| rest.strip_suffix(".json"))
                .or_else(|| name.strip_prefix(".upload_id-")?.split(".part-").next())?;
            Some(id.to_owned())
        })
        .collect();
    ids.into_iter().collect()
}

fn requests_to(proxy: &FaultProxy, method: &str) -> usize {
    proxy
        .log()
        .iter()
        .filter(|e| e.method == method && e.target.contains("uploadId="))
        .count()
}

/// A ctrl killed while completing a file's upload, then the file changed before the
/// next start: the next start aborts the old upload (the journal's id) and sends the
/// file anew, and the store keeps no upload behind.
#[test]
fn the_upload_of_a_file_changed_since_its_parts_were_sent_is_aborted_after_a_restart() {
    let s3 = S3Server::start(KEY, SECRET);
    s3.create_bucket("bucket");
    let plan = FaultPlan::shared(3);
    let proxy = FaultProxy::start(s3.port, plan.clone());
    let dir = temp_dir("changed");
    write_credentials(&dir, "bucket", &proxy.endpoint(), SECRET);
    let file = dir.join("output/big.bin");
    write_pattern(&file, 9 * MIB, 1);
    let spec = "url:s3://bucket/r,";
    plan.lock().unwrap().push(
        Rule::next(1, Fault::Stall(Duration::from_secs(20)))
            .method("POST")
            .target("uploadId="),
    );
    let mut first = start_run(&dir, spec);
    let started = Instant::now();
    while requests_to(&proxy, "PUT") < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?}",
            proxy.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Killed while the completion is stalled (the proxy logs an exchange once upstream
    // answers): the parts are sent, the upload open.
    std::thread::sleep(Duration::from_millis(500));
    let group = rustix::process::Pid::from_child(&first);
    rustix::process::kill_process_group(group, rustix::process::Signal::KILL).unwrap();
    first.wait().unwrap();
    assert_eq!(
        uploads_left(&s3).len(),
        1,
        "the killed run left its upload open"
    );

    write_pattern(&file, 9 * MIB + 5, 2);
    let (out, hung) = run_within(&dir, spec, Duration::from_secs(20));
    assert!(
        !hung && out.status.code() == Some(0),
        "{}\n{:?}",
        describe(&out),
        proxy.log()
    );
    assert!(same_content(&file, &s3.object_path("bucket", "r/big.bin")));
    assert_eq!(
        uploads_left(&s3),
        Vec::<String>::new(),
        "{}",
        describe(&out)
    );
    assert_eq!(requests_to(&proxy, "DELETE"), 1, "{:?}", proxy.log());
    let _ = std::fs::remove_dir_all(&dir);
}

/// An upload that fails for good aborts its multipart upload; when the store fails the
/// abort too, the journal keeps it and the next start sends it.
#[test]
fn an_upload_that_failed_for_good_is_aborted_now_or_by_the_next_start() {
    let s3 = S3Server::start(KEY, SECRET);
    s3.create_bucket("bucket");
    let plan = FaultPlan::shared(4);
    let proxy = FaultProxy::start(s3.port, plan.clone());
    let dir = temp_dir("failed");
    write_credentials(&dir, "bucket", &proxy.endpoint(), SECRET);
    write_pattern(&dir.join("output/big.bin"), 9 * MIB, 1);
    let refuse_completion = || {
        Rule::fraction(1.0, Fault::InvalidPart)
            .method("POST")
            .target("uploadId=")
    };

    // The abort goes out at once.
    plan.lock().unwrap().push(refuse_completion());
    let (out, hung) = run_within(&dir, "url:s3://bucket/now,", Duration::from_secs(20));
    assert!(!hung && out.status.code() == Some(12), "{}", describe(&out));
    assert!(describe(&out).contains("InvalidPart"), "{}", describe(&out));
    assert_eq!(uploads_left(&s3), Vec::<String>::new(), "{:?}", proxy.log());

    // The store fails the abort as well: the next start sends it.
    plan.lock()
        .unwrap()
        .push(Rule::fraction(1.0, Fault::InternalError).method("DELETE"));
    let spec = "url:s3://bucket/later,";
    let (out, hung) = run_within(&dir, spec, Duration::from_secs(20));
    assert!(!hung && out.status.code() == Some(12), "{}", describe(&out));
    assert_eq!(uploads_left(&s3).len(), 1, "{}", describe(&out));
    assert!(
        describe(&out).contains("the next start tries again"),
        "{}",
        describe(&out)
    );
    assert_eq!(requests_to(&proxy, "DELETE"), 1 + 3, "{:?}", proxy.log());
    plan.lock().unwrap().clear();
    let (out, hung) = run_within(&dir, spec, Duration::from_secs(20));
    assert!(
        !hung && out.status.code() == Some(0),
        "{}\n{:?}",
        describe(&out),
        proxy.log()
    );
    assert_eq!(uploads_left(&s3), Vec::<String>::new(), "{:?}", proxy.log());
    let _ = std::fs::remove_dir_all(&dir);
}
