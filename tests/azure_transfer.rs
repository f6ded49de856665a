//! `azure://account/container/path` end to end: `sidewire run` uploads a task's outputs to
//! and downloads its inputs from Azurite (which checks Shared Key signatures), directly or
//! through a proxy that injects faults, or from a canned server that answers what Azure
//! never would.

#[path = "common/azurite.rs"]
mod azurite;
mod common;
#[path = "data_plane/support.rs"]
mod support;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use azurite::{Azurite, ACCOUNT};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::fake_s3::{Canned, FakeS3};
use common::fault_proxy::{Exchange, Fault, FaultPlan, FaultProxy, Rule};
use common::pod::{pod_dir, wait_exit, Pod};
use common::{OsmoService, ServiceConfig};
use support::*;

/// Writes the credential file `sidewire run` reads: profile `azure://devstoreaccount1`,
/// whose `access_key` is `connection_string`.
fn write_azure_profile(workdir: &Path, connection_string: &str) {
    fs::create_dir_all(workdir).unwrap();
    let yaml = format!(
        "auth:\n  data:\n    azure://{ACCOUNT}:\n      access_key_id: {ACCOUNT}\n      access_key: '{connection_string}'\n"
    );
    fs::write(workdir.join("credentials.yaml"), yaml).unwrap();
}

#[test]
fn an_azure_tree_uploads_and_downloads_back_byte_identical_with_a_regex_filter() {
    let azurite = Azurite::start("round-trip");
    azurite.create_container("cont");
    let url = format!("azure://{ACCOUNT}/cont/run1");
    let up = temp_dir("azure-up");
    write_azure_profile(&up, &azurite.connection_string());
    for (i, (name, size)) in TREE.iter().enumerate() {
        write_pattern(&up.join("output").join(name), *size, i as u64 * 7919);
    }
    fs::write(up.join("output/skip.log"), b"not uploaded").unwrap();
    fs::write(up.join("output/a/notes.txt"), b"not uploaded either").unwrap();

    let out = run(&up, &[], &[format!("url:{url},.*\\.bin$")], &["true"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains(&format!("Uploaded {url}")), "{log}");

    // Every blob records its CRC64NVME, and nothing the regex left out is stored.
    let listed = azurite.send(
        &azurite.account(),
        sidewire::proto::azure::list_blobs("cont", "run1/", None),
        b"",
    );
    let page = sidewire::proto::azure::parse_list_blobs(&listed.body).expect("a listing");
    let mut names: Vec<(String, u64)> = page.blobs.into_iter().map(|b| (b.name, b.size)).collect();
    names.sort();
    let mut want: Vec<(String, u64)> = TREE
        .iter()
        .map(|(n, s)| (format!("run1/{n}"), *s))
        .collect();
    want.sort();
    assert_eq!(names, want);
    let head = azurite.send(
        &azurite.account(),
        sidewire::proto::azure::get_blob_properties("cont", "run1/big/three-hundred.bin"),
        b"",
    );
    assert!(
        head.head.header("x-ms-meta-crc64nvme").is_some(),
        "{:?}",
        head.head
    );

    let down = temp_dir("azure-down");
    write_azure_profile(&down, &azurite.connection_string());
    let out = run(&down, &[format!("url:data,{url},")], &[], &["true"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
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

/// A connection string with a shared access signature instead of the key: requests carry
/// the SAS on their query, and Azurite checks it.
#[test]
fn an_azure_upload_and_download_with_a_shared_access_signature() {
    let azurite = Azurite::start("sas");
    azurite.create_container("cont");
    let dir = temp_dir("azure-sas");
    write_azure_profile(&dir, &azurite.sas_connection_string());
    write_pattern(&dir.join("output/big.bin"), 20 * MIB + 1, 3);
    write_pattern(&dir.join("output/small.bin"), 100, 4);
    let url = format!("azure://{ACCOUNT}/cont/sas");
    let out = run(&dir, &[], &[format!("url:{url},")], &["true"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let out = run(&dir, &[format!("url:back,{url},")], &[], &["true"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    for name in ["big.bin", "small.bin"] {
        assert!(
            same_content(
                &dir.join("output").join(name),
                &dir.join("input/back").join(name)
            ),
            "{name}"
        );
    }
    // A signature that does not match is refused.
    let forged = azurite
        .sas_connection_string()
        .replace("sp=rwlac", "sp=rwdlac");
    write_azure_profile(&dir, &forged);
    let out = run(&dir, &[format!("url:again,{url},")], &[], &["true"]);
    assert_eq!(out.status.code(), Some(14), "{}", describe(&out));
    assert!(!describe(&out).contains("sig="), "{}", describe(&out));
    let _ = fs::remove_dir_all(&dir);
}

/// A wrong account key ends a `url:` transfer with 14 both ways, naming Azure's code and
/// never the key; a missing container ends a download with 10 and an upload with 12.
#[test]
fn azure_wrong_keys_and_a_missing_container_fail_with_their_codes() {
    let azurite = Azurite::start("refusals");
    azurite.create_container("cont");
    let dir = temp_dir("azure-refused");
    // A well-formed key that is not the account's.
    let wrong = "bm90LXRoZS1hY2NvdW50LWtleS1ub3QtdGhlLWFjY291bnQta2V5";
    let endpoint = format!("http://127.0.0.1:{}", azurite.port);
    write_azure_profile(&dir, &azurite.connection_string_via(&endpoint, wrong));
    write_pattern(&dir.join("output/x.bin"), 1000, 1);
    let url = format!("azure://{ACCOUNT}/cont/out");
    for (inputs, outputs) in [
        (vec![], vec![format!("url:{url},")]),
        (vec![format!("url:in,{url},")], vec![]),
    ] {
        let out = run(&dir, &inputs, &outputs, &["true"]);
        let text = describe(&out);
        assert_eq!(out.status.code(), Some(14), "{text}");
        assert!(text.contains("HTTP 403"), "{text}");
        assert!(!text.contains(wrong), "the key leaked: {text}");
    }

    write_azure_profile(&dir, &azurite.connection_string());
    let missing = format!("azure://{ACCOUNT}/nocontainer/out");
    let out = run(&dir, &[format!("task:in,{missing},")], &[], &["true"]);
    assert_eq!(out.status.code(), Some(10), "{}", describe(&out));
    assert!(
        describe(&out).contains("ContainerNotFound"),
        "{}",
        describe(&out)
    );
    write_pattern(&dir.join("output/y.bin"), 9 * MIB, 2);
    let out = run(&dir, &[], &[format!("task:{missing}")], &["true"]);
    assert_eq!(out.status.code(), Some(12), "{}", describe(&out));
    assert!(
        describe(&out).contains("ContainerNotFound"),
        "{}",
        describe(&out)
    );
    let _ = fs::remove_dir_all(&dir);
}

/// 503s, 500s and connections reset before and after the service saw a request are
/// retried one request at a time, both ways.
#[test]
fn azure_storms_of_5xx_and_resets_are_retried_per_request() {
    let azurite = Azurite::start("storm");
    azurite.create_container("cont");
    let plan = FaultPlan::shared(11);
    let proxy = FaultProxy::start(azurite.port, plan.clone());
    let dir = temp_dir("azure-storm");
    write_azure_profile(
        &dir,
        &azurite.connection_string_via(&proxy.endpoint(), azurite::KEY),
    );
    write_pattern(&dir.join("output/big.bin"), 40 * MIB + 3, 5);
    write_pattern(&dir.join("output/small.bin"), 3000, 6);
    {
        let mut p = plan.lock().unwrap();
        p.push(Rule::fraction(0.25, Fault::SlowDown));
        p.push(Rule::fraction(0.1, Fault::InternalError));
        p.push(Rule::next(2, Fault::ResetBeforeForward));
        p.push(Rule::next(1, Fault::ResetAfterForward).method("PUT"));
    }
    let url = format!("azure://{ACCOUNT}/cont/storm");
    let out = run(&dir, &[], &[format!("url:{url},")], &["true"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let faults = proxy.log().iter().filter(|e| e.fault.is_some()).count();
    assert!(faults >= 3, "the storm never hit: {:?}", proxy.log());
    // The large file went up as blocks, each with its CRC, and was committed.
    let log = proxy.log();
    let blocks: Vec<&Exchange> = log.iter().filter(|e| block_of(e).is_some()).collect();
    assert!(blocks.len() >= 5, "{log:?}");
    assert!(blocks
        .iter()
        .all(|e| e.header("x-ms-content-crc64").is_some()));
    assert!(proxy.count("PUT", "comp=blocklist") >= 1, "{log:?}");

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
    let out = run(&dir, &[format!("url:back,{url},")], &[], &["true"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    for name in ["big.bin", "small.bin"] {
        assert!(
            same_content(
                &dir.join("output").join(name),
                &dir.join("input/back").join(name)
            ),
            "{name}"
        );
    }
    drop(proxy);
    let _ = fs::remove_dir_all(&dir);
}

/// Listings no Azure would send: each ends the download with 10 and its own error, and
/// nothing is written outside the download folder.
#[test]
fn malformed_azure_listings_and_escaping_names_fail_with_nothing_written_outside() {
    let dir = temp_dir("azure-hostile");
    let listing = |blobs: &str, next: &str| {
        Canned::xml(
            200,
            format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults><Blobs>{blobs}</Blobs><NextMarker>{next}</NextMarker></EnumerationResults>"
            ),
        )
    };
    let blob = |name: &str| {
        format!("<Blob><Name>{name}</Name><Properties><Content-Length>1</Content-Length><Etag>0x1</Etag></Properties></Blob>")
    };
    let cases: Vec<(Canned, &str)> = vec![
        (
            Canned::xml(200, "<EnumerationResults><Blobs><Blob><Name>a"),
            "not usable",
        ),
        (listing("<Blob><Name>a</Name></Blob>", ""), "not usable"),
        (
            listing(&format!("{}{}", blob("a"), blob("../../escape")), ""),
            "Refusing object",
        ),
        (listing("", "same-marker"), "does not end"),
    ];
    for (answer, expected) in cases {
        let fake = FakeS3::start();
        write_azure_profile(
            &dir,
            &format!(
                "AccountName={ACCOUNT};AccountKey={};BlobEndpoint={}/{ACCOUNT}",
                azurite::KEY,
                fake.endpoint()
            ),
        );
        fake.route("GET", "comp=list", answer);
        let out = run(
            &dir,
            &[format!("url:in,azure://{ACCOUNT}/cont,")],
            &[],
            &["true"],
        );
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
        assert!(!dir.join("escape").exists());
        let other: Vec<String> = tree(&dir.join("input"))
            .into_iter()
            .filter(|p| p != "in/a" && !(p.starts_with("in/.a.") && p.ends_with(".sidewire-part")))
            .collect();
        assert!(other.is_empty(), "{other:?}");
    }
    let _ = fs::remove_dir_all(&dir);
}

/// `(upload tag, part number)` of a Put Block request (`comp=block&blockid=...`).
fn block_of(e: &Exchange) -> Option<(String, u32)> {
    if e.method != "PUT" {
        return None;
    }
    let query = e.target.split_once('?')?.1;
    let (mut is_block, mut id) = (false, None);
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("comp", "block")) => is_block = true,
            Some(("blockid", v)) => {
                id = Some(
                    v.replace("%3D", "=")
                        .replace("%2B", "+")
                        .replace("%2F", "/"),
                )
            }
            _ => {}
        }
    }
    let raw = STANDARD.decode(id.filter(|_| is_block)?).ok()?;
    let (tag, number) = std::str::from_utf8(&raw)
        .ok()?
        .strip_prefix("sidewire-")?
        .rsplit_once('-')?;
    Some((tag.to_string(), number.parse().ok()?))
}

const CONCURRENCY: usize = 8;

fn start_ctrl(dir: &Path, cfg: &ServiceConfig, port: u16) -> Child {
    let journal = dir.join("journal/journal.db");
    let creds = dir.join("credentials.yaml");
    Pod::start_ctrl(
        dir,
        cfg,
        port,
        &[
            "-outputs",
            &format!("url:azure://{ACCOUNT}/cont/big,"),
            "-userConfig",
            &creds.display().to_string(),
            "-journal",
            &journal.display().to_string(),
            "-dataConcurrency",
            &CONCURRENCY.to_string(),
        ],
    )
}

/// ctrl killed ten times in the middle of a 1 GiB upload to Azure and started again each
/// time: the next ctrl asks the service which blocks it holds (Get Block List) and sends
/// only the others, under the same upload tag; the blob ends whole.
#[test]
fn ctrl_killed_ten_times_during_a_1_gib_azure_upload_sends_no_finished_block_twice() {
    let mut rng = Rng::from_clock();
    let azurite = Azurite::start("kill");
    azurite.create_container("cont");
    let proxy = FaultProxy::start(azurite.port, FaultPlan::shared(1));
    let cfg = ServiceConfig::default();
    let service = OsmoService::start(cfg.clone());
    let dir = pod_dir("azure-kill");
    write_azure_profile(
        &dir,
        &azurite.connection_string_via(&proxy.endpoint(), azurite::KEY),
    );
    let source = dir.join("output/data.bin");
    write_pattern(&source, 1024 * MIB, 91);

    let mut ctrl = start_ctrl(&dir, &cfg, service.port());
    let mut agent = Pod::start_agent(&dir, "exit 0");
    assert_eq!(wait_exit(&mut agent, Duration::from_secs(60)), Some(0));
    let mut kill_marks = Vec::new();
    let mut finished_early = false;
    for round in 0..10 {
        std::thread::sleep(Duration::from_millis(150 + rng.below(350)));
        if let Ok(Some(status)) = ctrl.try_wait() {
            println!("round {round}: ctrl had already finished ({status})");
            finished_early = true;
            break;
        }
        ctrl.kill().unwrap();
        ctrl.wait().unwrap();
        // Requests begun and requests ended by the time of the kill.
        kill_marks.push((proxy.started(), proxy.log().len()));
        ctrl = start_ctrl(&dir, &cfg, service.port());
    }
    let code = wait_exit(&mut ctrl, Duration::from_secs(300));
    assert_eq!(code, Some(0), "the last ctrl finishes the upload");
    assert!(
        !finished_early,
        "the upload ended before the tenth interruption"
    );

    // A block the service took (answered 2xx) may only be sent again by a later ctrl,
    // and only if the answer was in flight when the earlier one was killed: begun before
    // the kill, and ended after it or just before (unread by the ctrl that died). A block
    // whose attempt failed is retried, as it should be.
    let log = proxy.log();
    let mut taken: HashMap<(String, u32), (usize, usize)> = HashMap::new();
    let (mut resent, mut failed) = (0, 0);
    let ok = |e: &Exchange| e.status.is_some_and(|s| (200..300).contains(&s));
    for (ended, e) in log.iter().enumerate() {
        let Some(block) = block_of(e) else { continue };
        if !ok(e) {
            failed += 1;
        }
        match taken.get(&block) {
            None if ok(e) => {
                taken.insert(block, (e.started, ended));
            }
            None => {}
            Some(&(first_started, first_ended)) => {
                resent += 1;
                let in_flight_at_a_kill = kill_marks.iter().any(|&(k_started, k_ended)| {
                    first_started < k_started
                        && k_started <= e.started
                        && first_ended + CONCURRENCY >= k_ended
                });
                assert!(
                    in_flight_at_a_kill,
                    "block {block:?} was taken (begun {first_started}, ended {first_ended}) and sent again (begun {}); kills at {kill_marks:?}",
                    e.started
                );
            }
        }
    }
    let tags: HashSet<&String> = taken.keys().map(|(tag, _)| tag).collect();
    println!(
        "{} blocks, {resent} resent (in flight at a kill), {failed} attempts not taken, {} upload tags, {} block listings",
        taken.len(),
        tags.len(),
        proxy.count("GET", "blocklisttype=uncommitted")
    );
    assert_eq!(tags.len(), 1, "a restart began a new upload");
    assert!(proxy.count("GET", "blocklisttype=uncommitted") >= 3);

    // The blob, fetched back, is the file.
    let back = dir.join("back");
    write_azure_profile(&back, &azurite.connection_string());
    let out = run(
        &back,
        &[format!("url:in,azure://{ACCOUNT}/cont/big,")],
        &[],
        &["true"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(same_content(&source, &back.join("input/in/data.bin")));
    let _ = fs::remove_dir_all(&dir);
}
