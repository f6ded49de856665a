//! The data plane end to end: `sidewire run` uploads a task's outputs to and downloads its
//! inputs from a real SigV4-checking S3 server (s3s-fs, in-process), through a proxy
//! that injects faults, or from a canned server that answers what no real one would.

mod common;
// Only the data-plane tests link the S3 server (and its tokio runtime).
#[path = "common/s3_server.rs"]
mod s3_server;
#[path = "data_plane/support.rs"]
mod support;

use std::fs;

use common::fake_s3::{Canned, FakeS3, Listed};
use common::fault_proxy::{Fault, FaultPlan, FaultProxy, Rule};
use s3_server::S3Server;
use support::*;

#[test]
fn a_tree_uploads_and_downloads_back_byte_identical_with_a_regex_filter() {
    round_trip("s3://bucket/run1", "s3://bucket", "tree");
}

/// Swift through its S3 API: the container is the bucket, the profile is
/// `swift://host/AUTH_ns`, and `override_url` points at the S3 server.
#[test]
fn a_swift_tree_uploads_and_downloads_back_byte_identical_through_the_s3_api() {
    round_trip(
        "swift://swift.example.com/AUTH_test/bucket/run1",
        "swift://swift.example.com/AUTH_test",
        "swift",
    );
}

/// The tree up to `url` (bucket or container `bucket`, prefix `run1`) and back
/// from it, with the credentials under `profile`.
fn round_trip(url: &str, profile: &str, name: &str) {
    let s3 = S3Server::start(KEY, SECRET);
    s3.create_bucket("bucket");
    let up = temp_dir(&format!("{name}-up"));
    write_profile(&up, profile, &s3.endpoint(), SECRET);
    for (i, (name, size)) in TREE.iter().enumerate() {
        write_pattern(&up.join("output").join(name), *size, i as u64 * 7919);
    }
    fs::write(up.join("output/skip.log"), b"not uploaded").unwrap();
    fs::write(up.join("output/a/notes.txt"), b"not uploaded either").unwrap();

    let out = run(&up, &[], &[format!("url:{url},.*\\.bin$")], &["true"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains(&format!("Uploaded {url}")), "{log}");
    assert!(log.contains("All Outputs Uploaded"), "{log}");
    for (name, _) in TREE {
        let stored = s3.object_path("bucket", &format!("run1/{name}"));
        assert!(
            same_content(&up.join("output").join(name), &stored),
            "{name} differs in the store"
        );
    }
    assert!(!s3.object_path("bucket", "run1/skip.log").exists());

    let down = temp_dir(&format!("{name}-down"));
    write_profile(&down, profile, &s3.endpoint(), SECRET);
    let out = run(&down, &[format!("url:data,{url},")], &[], &["true"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("All Inputs Gathered"), "{log}");
    // A large download leaves the page cache as it found it (drop-behind).
    let cached = cached_bytes(&down.join("input/data/big/three-hundred.bin"));
    assert!(
        cached <= 4 * MIB,
        "{} MiB of 300 still cached",
        cached / MIB
    );
    let got = tree(&down.join("input/data"));
    let mut want: Vec<String> = TREE.iter().map(|(n, _)| n.to_string()).collect();
    want.sort();
    assert_eq!(got, want);
    for (name, _) in TREE {
        assert!(
            same_content(
                &up.join("output").join(name),
                &down.join("input/data").join(name)
            ),
            "{name} differs after the round trip"
        );
    }
    let _ = fs::remove_dir_all(&up);
    let _ = fs::remove_dir_all(&down);
}

#[test]
fn links_out_of_the_output_folder_are_skipped_and_named_and_no_secret_byte_is_stored() {
    let s3 = S3Server::start(KEY, SECRET);
    s3.create_bucket("bucket");
    let up = temp_dir("escapes");
    write_credentials(&up, "bucket", &s3.endpoint(), SECRET);
    let escapes = plant_escapes(&up.join("output"), &up);
    let kpi = escapes.file.display().to_string();
    let out = run(
        &up,
        &[],
        &[
            "url:s3://bucket/r,".into(),
            format!("kpi:s3://bucket/k,{kpi}"),
        ],
        &["true"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let log = String::from_utf8_lossy(&out.stdout);
    assert_named_as_skipped(&log, &escapes.skipped);
    assert_named_as_skipped(&log, &[&kpi]);
    assert_eq!(holding_secret(&s3.root), Vec::<std::path::PathBuf>::new());
    assert!(!s3
        .object_path("bucket", "r/to-secret-folder/key.pem")
        .exists());
    for name in ["inside-link", "sub/real.txt"] {
        let stored = fs::read(s3.object_path("bucket", &format!("r/{name}"))).unwrap();
        assert_eq!(stored, b"inside", "{name}");
    }
    assert!(escapes.folder.join("key.pem").exists());
}

/// Modification times far from now (`touch -d @1e10` and `@-1e10`) do not overflow the
/// nanosecond arithmetic, and such files upload.
#[test]
fn files_touched_far_in_the_future_and_the_past_upload() {
    let s3 = S3Server::start(KEY, SECRET);
    s3.create_bucket("bucket");
    let up = temp_dir("mtimes");
    write_credentials(&up, "bucket", &s3.endpoint(), SECRET);
    for (name, at) in [
        ("future.txt", "@10000000000"),
        ("past.txt", "@-10000000000"),
    ] {
        let path = up.join("output").join(name);
        write_pattern(&path, 100, 3);
        let touched = std::process::Command::new("touch")
            .args(["-d", at])
            .arg(&path)
            .status()
            .unwrap();
        assert!(touched.success());
    }
    let outputs = [
        "url:s3://bucket/t,".to_string(),
        "kpi:s3://bucket/k,future.txt".to_string(),
    ];
    let out = run(&up, &[], &outputs, &["true"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    for key in ["t/future.txt", "t/past.txt", "k/future.txt"] {
        assert_eq!(
            fs::metadata(s3.object_path("bucket", key)).unwrap().len(),
            100,
            "{key}"
        );
    }
}

#[test]
fn wrong_credentials_are_data_unauthorized_and_name_the_url() {
    let dir = wrong_keys_are_refused_both_ways("s3://bucket", "s3://bucket/out", "wrong-secret");
    let _ = fs::remove_dir_all(&dir);
}

/// swift:// meets the S3 paths' refusals: wrong keys end with 14 and a missing
/// container with 10, each naming the store's code and never the secret.
#[test]
fn swift_wrong_keys_and_a_missing_container_fail_with_their_codes() {
    let profile = "swift://swift.example.com/AUTH_test";
    let dir = wrong_keys_are_refused_both_ways(
        profile,
        &format!("{profile}/bucket/out"),
        "swift-refused",
    );
    let s3 = S3Server::start(KEY, SECRET);
    write_profile(&dir, profile, &s3.endpoint(), SECRET);
    let out = run(
        &dir,
        &[format!("task:in,{profile}/nocontainer/out,")],
        &[],
        &["true"],
    );
    assert_eq!(out.status.code(), Some(10), "{}", describe(&out));
    assert!(
        describe(&out).contains("NoSuchBucket"),
        "{}",
        describe(&out)
    );
    let _ = fs::remove_dir_all(&dir);
}

/// Keys with the wrong secret under `profile`: an upload to `url` and a download from it
/// each end with 14, naming SignatureDoesNotMatch and never the secret. Returns the
/// test's folder.
fn wrong_keys_are_refused_both_ways(profile: &str, url: &str, name: &str) -> std::path::PathBuf {
    let s3 = S3Server::start(KEY, SECRET);
    s3.create_bucket("bucket");
    let dir = temp_dir(name);
    write_profile(&dir, profile, &s3.endpoint(), "not-the-secret");
    write_pattern(&dir.join("output/x.bin"), 1000, 1);
    let out = run(&dir, &[], &[format!("url:{url},")], &["true"]);
    assert_eq!(out.status.code(), Some(14), "{}", describe(&out));
    let text = describe(&out);
    assert!(text.contains("SignatureDoesNotMatch"), "{text}");
    assert!(
        !text.contains("not-the-secret"),
        "the secret leaked: {text}"
    );

    let out = run(&dir, &[format!("url:in,{url},")], &[], &["true"]);
    assert_eq!(out.status.code(), Some(14), "{}", describe(&out));
    dir
}

#[test]
fn a_missing_bucket_fails_the_transfer_with_its_code() {
    // s3s-fs refuses listings of a missing bucket (and creates one on PUT), so the
    // upload side is a canned store answering as AWS does.
    let s3 = S3Server::start(KEY, SECRET);
    let dir = temp_dir("no-bucket");
    write_credentials(&dir, "nobucket", &s3.endpoint(), SECRET);
    let out = run(&dir, &["task:in,s3://nobucket/out,".into()], &[], &["true"]);
    assert_eq!(out.status.code(), Some(10), "{}", describe(&out));
    assert!(
        describe(&out).contains("NoSuchBucket"),
        "{}",
        describe(&out)
    );

    let fake = FakeS3::start();
    let no_bucket = "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>";
    fake.route("PUT", "/nobucket/", Canned::xml(404, no_bucket));
    fake.route("POST", "/nobucket/", Canned::xml(404, no_bucket));
    write_credentials(&dir, "nobucket", &fake.endpoint(), SECRET);
    write_pattern(&dir.join("output/x.bin"), 1000, 1);
    write_pattern(&dir.join("output/y.bin"), 9 * MIB, 2);
    let out = run(&dir, &[], &["task:s3://nobucket/out".into()], &["true"]);
    assert_eq!(out.status.code(), Some(12), "{}", describe(&out));
    assert!(
        describe(&out).contains("NoSuchBucket"),
        "{}",
        describe(&out)
    );
    assert!(!describe(&out).contains("All Outputs Uploaded"));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn storms_of_5xx_resets_and_truncated_bodies_are_retried_per_request() {
    let s3 = S3Server::start(KEY, SECRET);
    s3.create_bucket("bucket");
    let plan = FaultPlan::shared(7);
    let proxy = FaultProxy::start(s3.port, plan.clone());
    let dir = temp_dir("storm");
    write_credentials(&dir, "bucket", &proxy.endpoint(), SECRET);
    write_pattern(&dir.join("output/big.bin"), 40 * MIB + 3, 5);
    write_pattern(&dir.join("output/small.bin"), 3000, 6);
    {
        let mut p = plan.lock().unwrap();
        p.push(Rule::fraction(0.25, Fault::SlowDown));
        p.push(Rule::fraction(0.1, Fault::InternalError));
        p.push(Rule::next(2, Fault::ResetBeforeForward));
        p.push(Rule::next(1, Fault::ResetAfterForward).method("PUT"));
    }
    let out = run(&dir, &[], &["url:s3://bucket/storm,".into()], &["true"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    for name in ["big.bin", "small.bin"] {
        assert!(same_content(
            &dir.join("output").join(name),
            &s3.object_path("bucket", &format!("storm/{name}"))
        ));
    }
    let faults = proxy.log().iter().filter(|e| e.fault.is_some()).count();
    assert!(faults >= 3, "the storm never hit: {:?}", proxy.log());

    {
        let mut p = plan.lock().unwrap();
        p.clear();
        p.push(
            Rule::next(3, Fault::TruncateBody(1000))
                .method("GET")
                .target("storm/big.bin"),
        );
        p.push(Rule::fraction(0.2, Fault::SlowDown).method("GET"));
    }
    let out = run(
        &dir,
        &["url:back,s3://bucket/storm,".into()],
        &[],
        &["true"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(same_content(
        &dir.join("output/big.bin"),
        &dir.join("input/back/big.bin")
    ));
    drop(proxy);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn malformed_listings_and_keys_that_leave_the_folder_fail_with_nothing_written_outside() {
    let dir = temp_dir("hostile");
    let cases: Vec<(Canned, &str)> = vec![
        (Canned::malformed_listing(), "not usable"),
        (Canned::hostile_keys_listing(), "Refusing object"),
        (Canned::truncated_without_token(), "not usable"),
        (Canned::endless_pagination(), "does not end"),
    ];
    for (answer, expected) in cases {
        let fake = FakeS3::start();
        write_credentials(&dir, "bucket", &fake.endpoint(), SECRET);
        fake.route("GET", "list-type=2", answer);
        let out = run(&dir, &["url:in,s3://bucket,".into()], &[], &["true"]);
        assert_eq!(
            out.status.code(),
            Some(10),
            "{expected}: {}",
            describe(&out)
        );
        assert!(
            describe(&out).contains(expected),
            "{expected}: {}",
            describe(&out)
        );
        assert!(!dir.join("escape").exists() && !std::path::Path::new("/abs").exists());
        // Downloads start while later pages are listed, so the one well-formed key
        // ("a") may be there, whole or under its temporary name; nothing else is.
        let other: Vec<String> = tree(&dir.join("input"))
            .into_iter()
            .filter(|p| p != "in/a" && !(p.starts_with("in/.a.") && p.ends_with(".sidewire-part")))
            .collect();
        assert!(other.is_empty(), "{other:?}");
    }
    let _ = fs::remove_dir_all(&dir);
}

/// A single-part object's ETag is its MD5, and a download that does not match fails;
/// objects encrypted with KMS or a customer key carry other ETags, which are no reason
/// to refuse them.
#[test]
fn a_plain_etag_is_checked_as_md5_unless_the_object_is_kms_or_customer_encrypted() {
    let dir = temp_dir("sse-etag");
    let body = b"encrypted at rest".to_vec();
    let not_md5 = "0123456789abcdef0123456789abcdef";
    for (sse, expected_code) in [
        (None, 10),
        (Some(("x-amz-server-side-encryption", "aws:kms")), 0),
        (
            Some(("x-amz-server-side-encryption-customer-algorithm", "AES256")),
            0,
        ),
    ] {
        let _ = fs::remove_dir_all(dir.join("input"));
        let fake = FakeS3::start();
        write_credentials(&dir, "bucket", &fake.endpoint(), SECRET);
        let listed = Listed {
            key: "k.bin",
            size: body.len() as u64,
            etag: not_md5,
        };
        fake.route(
            "GET",
            "list-type=2",
            Canned::listing_of(&[listed], false, None),
        );
        let mut answer = Canned::object(body.clone(), not_md5);
        if let Some((name, value)) = sse {
            answer = answer.header(name, value);
        }
        fake.route("GET", "/bucket/k.bin", answer);
        let out = run(&dir, &["url:in,s3://bucket,".into()], &[], &["true"]);
        assert_eq!(
            out.status.code(),
            Some(expected_code),
            "{sse:?}: {}",
            describe(&out)
        );
        let landed = fs::read(dir.join("input/in/k.bin")).ok();
        if expected_code == 0 {
            assert_eq!(landed.as_deref(), Some(&body[..]), "{sse:?}");
        } else {
            assert!(
                describe(&out).contains("does not match its ETag"),
                "{}",
                describe(&out)
            );
            assert_eq!(
                landed, None,
                "a file that failed its check is not put in place"
            );
        }
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn the_default_store_is_a_local_folder() {
    let dir = temp_dir("file-store");
    write_pattern(&dir.join("output/r/result.bin"), 3 * MIB + 5, 9);
    let out = run(&dir, &[], &["results".into()], &["true"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stored = dir.join("store/results/r/result.bin");
    assert!(same_content(&dir.join("output/r/result.bin"), &stored));
    let again = temp_dir("file-store-again");
    let store = format!("-store=file://{}/store", dir.display());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sidewire"))
        .args([
            "run",
            &format!("-workdir={}", again.display()),
            &store,
            "-input=results",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(same_content(
        &stored,
        &again.join("input/results/r/result.bin")
    ));
    let _ = fs::remove_dir_all(&dir);
    let _ = fs::remove_dir_all(&again);
}
