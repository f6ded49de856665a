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
use sidewire::data::journal::{Direction, Journal, MultipartRecord};
use support::*;

/// `sidewire run` uploading `output/` with `spec`, killed if it runs past `limit`.
fn run_within(workdir: &Path, spec: &str, limit: Duration) -> (Output, bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sidewire"))
        .arg("run")
        .arg(format!("-workdir={}", workdir.display()))
        .arg(format!("-output={spec}"))
        .args(["--", "true"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sidewire run");
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
