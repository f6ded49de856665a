//! Integrity by CRC64NVME, end to end through the fault proxy in front of a real
//! SigV4-checking S3 server (s3s-fs): every PUT and part carries its body's CRC, a
//! multipart upload declares CRC64NVME and completes with the whole object's, every object
//! records its CRC as metadata, and a body damaged on the way up is refused by the store
//! and sent again.

mod common;
#[path = "common/s3_server.rs"]
mod s3_server;
#[path = "data_plane/support.rs"]
mod support;

use std::fs;

use common::fault_proxy::{Exchange, Fault, FaultPlan, FaultProxy, Rule};
use s3_server::S3Server;
use sidewire::proto::s3::checksum::{crc64nvme, to_header};
use sidewire::proto::s3::UNSIGNED_PAYLOAD;
use support::*;

fn puts_of<'a>(log: &'a [Exchange], key: &str) -> Vec<&'a Exchange> {
    log.iter()
        .filter(|e| e.method == "PUT" && e.target.split('?').next() == Some(key))
        .collect()
}

#[test]
fn a_put_damaged_on_the_way_up_is_refused_by_the_store_and_sent_again() {
    let s3 = S3Server::start(KEY, SECRET);
    s3.create_bucket("bucket");
    let plan = FaultPlan::shared(3);
    let proxy = FaultProxy::start(s3.port, plan.clone());
    // Unsigned, only the CRC64NVME can catch the damage (400 BadDigest); signed, the
    // SHA-256 catches it first (AWS says 400 XAmzContentSHA256Mismatch, s3s a 500). Both
    // are sent again.
    for (signing, name, refusal) in [("unsigned", "crc.bin", 400), ("signed", "sha.bin", 500)] {
        let dir = temp_dir(&format!("damaged-{signing}"));
        write_credentials(&dir, "bucket", &proxy.endpoint(), SECRET);
        write_pattern(&dir.join("output").join(name), 3000, 9);
        plan.lock()
            .unwrap()
            .push(Rule::next(1, Fault::CorruptRequestByte(1234)).method("PUT"));
        let flag = format!("-payloadSigning={signing}");
        let out = run_with(
            &dir,
            &[&flag],
            &[],
            &["url:s3://bucket/d,".into()],
            &["true"],
        );
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        let stored = s3.object_path("bucket", &format!("d/{name}"));
        assert!(same_content(&dir.join("output").join(name), &stored));
        let log = proxy.log();
        let puts = puts_of(&log, &format!("/bucket/d/{name}"));
        let statuses: Vec<Option<u16>> = puts.iter().map(|e| e.status).collect();
        assert_eq!(statuses, [Some(refusal), Some(200)], "{puts:?}");
        let crc = to_header(crc64nvme(&fs::read(&stored).unwrap()));
        for put in &puts {
            assert_eq!(put.header("x-amz-checksum-crc64nvme"), Some(crc.as_str()));
            assert_eq!(put.header("x-amz-meta-crc64nvme"), Some(crc.as_str()));
            let unsigned = put.header("x-amz-content-sha256") == Some(UNSIGNED_PAYLOAD);
            assert_eq!(unsigned, signing == "unsigned", "{put:?}");
        }
        let _ = fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_multipart_upload_declares_crc64nvme_and_each_part_and_the_whole_carry_theirs() {
    let s3 = S3Server::start(KEY, SECRET);
    s3.create_bucket("bucket");
    let proxy = FaultProxy::start(s3.port, FaultPlan::shared(1));
    let dir = temp_dir("multipart-crc");
    write_credentials(&dir, "bucket", &proxy.endpoint(), SECRET);
    let local = dir.join("output/big.bin");
    write_pattern(&local, 20 * MIB + 3, 11);
    let out = run_with(
        &dir,
        &["-payloadSigning=unsigned"],
        &[],
        &["url:s3://bucket/m,".into()],
        &["true"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(same_content(&local, &s3.object_path("bucket", "m/big.bin")));
    let bytes = fs::read(&local).unwrap();
    let whole = to_header(crc64nvme(&bytes));
    let log = proxy.log();
    let create = log
        .iter()
        .find(|e| e.method == "POST" && e.target.ends_with("?uploads="))
        .expect("CreateMultipartUpload");
    assert_eq!(create.header("x-amz-checksum-algorithm"), Some("CRC64NVME"));
    assert_eq!(create.header("x-amz-checksum-type"), Some("FULL_OBJECT"));
    assert_eq!(create.header("x-amz-meta-crc64nvme"), Some(whole.as_str()));
    let mut parts: Vec<(u32, &Exchange)> = log
        .iter()
        .filter_map(|e| Some((e.upload_part()?.1, e)))
        .collect();
    parts.sort_by_key(|(n, _)| *n);
    assert_eq!(parts.len(), 3, "{log:?}");
    for (number, part) in parts {
        let from = (number as usize - 1) * 8 * MIB as usize;
        let to = bytes.len().min(from + 8 * MIB as usize);
        let crc = to_header(crc64nvme(&bytes[from..to]));
        assert_eq!(part.header("x-amz-checksum-crc64nvme"), Some(crc.as_str()));
        assert_eq!(part.header("x-amz-content-sha256"), Some(UNSIGNED_PAYLOAD));
    }
    let complete = log
        .iter()
        .find(|e| e.method == "POST" && e.target.contains("?uploadId="))
        .expect("CompleteMultipartUpload");
    assert_eq!(
        complete.header("x-amz-checksum-crc64nvme"),
        Some(whole.as_str())
    );
    assert_eq!(complete.header("x-amz-checksum-type"), Some("FULL_OBJECT"));
    let _ = fs::remove_dir_all(&dir);
}

/// Uploads `size` bytes as `s3://bucket/{key}` straight to the server, then downloads
/// it through a proxy with `rule`: the download's output and the proxy's log.
fn download_through(rule: Rule, name: &str, size: u64) -> (std::process::Output, Vec<Exchange>) {
    let s3 = S3Server::start(KEY, SECRET);
    s3.create_bucket("bucket");
    let dir = temp_dir(name);
    write_credentials(&dir, "bucket", &s3.endpoint(), SECRET);
    write_pattern(&dir.join("output/big.bin"), size, 13);
    let out = run(&dir, &[], &["url:s3://bucket/c,".into()], &["true"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let plan = FaultPlan::shared(5);
    plan.lock().unwrap().push(rule);
    let proxy = FaultProxy::start(s3.port, plan);
    write_credentials(&dir, "bucket", &proxy.endpoint(), SECRET);
    let out = run(&dir, &["url:back,s3://bucket/c,".into()], &[], &["true"]);
    if out.status.success() {
        assert!(same_content(
            &dir.join("output/big.bin"),
            &dir.join("input/back/big.bin")
        ));
    }
    let log = proxy.log();
    let _ = fs::remove_dir_all(&dir);
    (out, log)
}

#[test]
fn a_range_damaged_on_the_way_down_is_caught_by_the_whole_object_crc_and_fetched_again() {
    // A multipart object: its ETag is no MD5, so only its CRC64NVME can catch this.
    let rule = Rule::next(1, Fault::CorruptByte(5000))
        .method("GET")
        .target("c/big.bin");
    let (out, log) = download_through(rule, "range-damaged", 70 * MIB + 3);
    let text = describe(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("c/big.bin: its CRC64NVME")
            && text.contains("does not match the CRC64NVME recorded with the object")
            && text.contains("fetching it again"),
        "{text}"
    );
    let gets = log
        .iter()
        .filter(|e| e.method == "GET" && e.target.contains("c/big.bin"));
    let (damaged, clean): (Vec<&Exchange>, Vec<&Exchange>) = gets.partition(|e| e.fault.is_some());
    // Every range once (one of them damaged), then every range again.
    let size = 70 * MIB + 3;
    let ranges = size.div_ceil(sidewire::data::plan::range_size(size)) as usize;
    assert!(ranges > 1);
    assert_eq!((damaged.len(), clean.len()), (1, 2 * ranges - 1), "{log:?}");
}

#[test]
fn an_object_damaged_on_every_fetch_fails_with_its_name_after_one_refetch() {
    let rule = Rule::fraction(1.0, Fault::CorruptByte(10))
        .method("GET")
        .target("c/big.bin");
    let (out, log) = download_through(rule, "always-damaged", 3000);
    let text = describe(&out);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("Downloading c/big.bin: its CRC64NVME")
            && text.contains("the store's full-object checksum"),
        "{text}"
    );
    let gets = log
        .iter()
        .filter(|e| e.method == "GET" && e.target.contains("c/big.bin"));
    assert_eq!(gets.count(), 2, "fetched once, then once again");
}

#[test]
fn over_tls_bodies_go_unsigned_with_their_crc_and_come_back_whole() {
    let s3 = S3Server::start(KEY, SECRET);
    s3.create_bucket("bucket");
    // sidewire -> TLS front -> logging proxy -> s3s-fs: the proxy sees what was signed.
    let proxy = FaultProxy::start(s3.port, FaultPlan::shared(2));
    let front = common::tls_service::TlsFront::start(proxy.port);
    let dir = temp_dir("tls-unsigned");
    let ca = dir.join("ca.pem");
    fs::write(&ca, front.ca_pem()).unwrap();
    let endpoint = format!("https://127.0.0.1:{}", front.port());
    write_credentials(&dir, "bucket", &endpoint, SECRET);
    write_pattern(&dir.join("output/big.bin"), 20 * MIB + 3, 17);
    write_pattern(&dir.join("output/small.bin"), 3000, 18);
    let sidewire = |spec: &str| run_over_tls(&dir, &ca, spec);
    sidewire("-output=url:s3://bucket/t,");
    sidewire("-input=url:back,s3://bucket/t,");
    for name in ["big.bin", "small.bin"] {
        let local = dir.join("output").join(name);
        assert!(same_content(
            &local,
            &s3.object_path("bucket", &format!("t/{name}"))
        ));
        assert!(same_content(&local, &dir.join("input/back").join(name)));
    }
    let log = proxy.log();
    let bodies: Vec<&Exchange> = log.iter().filter(|e| e.method == "PUT").collect();
    assert_eq!(bodies.len(), 4, "one PUT and three parts: {log:?}");
    for put in bodies {
        assert_eq!(
            put.header("x-amz-content-sha256"),
            Some(UNSIGNED_PAYLOAD),
            "{put:?}"
        );
        assert!(put.header("x-amz-checksum-crc64nvme").is_some(), "{put:?}");
    }
    assert!(front.handshakes() >= 1);
    let _ = fs::remove_dir_all(&dir);
}

/// `sidewire run` in `dir` with `spec`, trusting `ca`; fails if it takes over a minute
/// (a transfer that hangs would otherwise wait out the 10-minute data timeout).
fn run_over_tls(dir: &std::path::Path, ca: &std::path::Path, spec: &str) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sidewire"))
        .arg("run")
        .arg(format!("-workdir={}", dir.display()))
        .arg(spec)
        .args(["--", "true"])
        .env("SSL_CERT_FILE", ca)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("{spec} hung over TLS: {}", describe(&out));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}

#[test]
fn a_large_upload_over_tls_sends_every_parts_last_records() {
    // Straight to s3s-fs behind the TLS front. Some part's last TLS records find the
    // socket full; they used to stay in rustls, that part never ended, and the upload
    // hung until -dataTimeout (10 minutes) retried it.
    let s3 = S3Server::start(KEY, SECRET);
    s3.create_bucket("bucket");
    let front = common::tls_service::TlsFront::start(s3.port);
    let dir = temp_dir("tls-large");
    let ca = dir.join("ca.pem");
    fs::write(&ca, front.ca_pem()).unwrap();
    write_credentials(
        &dir,
        "bucket",
        &format!("https://127.0.0.1:{}", front.port()),
        SECRET,
    );
    let local = dir.join("output/large.bin");
    write_pattern(&local, 200 * MIB + 3, 19);
    run_over_tls(&dir, &ca, "-output=url:s3://bucket/l,");
    assert!(same_content(
        &local,
        &s3.object_path("bucket", "l/large.bin")
    ));
    let _ = fs::remove_dir_all(&dir);
}
