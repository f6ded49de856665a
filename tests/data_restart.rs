//! A sidecar killed in the middle of a transfer and started again: the journal on the data
//! volume lets the next ctrl go on where the last one stopped. Against the real S3 server
//! (s3s-fs), through a proxy that logs every request, with a real OSMO service stand-in.

mod common;
#[path = "common/s3_server.rs"]
mod s3_server;
#[path = "data_plane/support.rs"]
mod support;

use std::collections::HashMap;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use common::fault_proxy::{FaultPlan, FaultProxy};
use common::pod::{pod_dir, wait_exit, Pod};
use common::{OsmoService, ServiceConfig};
use s3_server::S3Server;
use support::*;

const CONCURRENCY: usize = 8;

fn start_ctrl(dir: &Path, cfg: &ServiceConfig, port: u16, endpoint_creds: &Path) -> Child {
    let journal = dir.join("journal/journal.db");
    let creds = endpoint_creds.join("credentials.yaml");
    Pod::start_ctrl(
        dir,
        cfg,
        port,
        &[
            "-outputs",
            "url:s3://bucket/big,",
            "-userConfig",
            &creds.display().to_string(),
            "-journal",
            &journal.display().to_string(),
            "-dataConcurrency",
            &CONCURRENCY.to_string(),
            // A SIGTERM lets the upload go on this long before ctrl exits.
            "-drainTimeout",
            "2",
        ],
    )
}

#[test]
fn ctrl_killed_twenty_times_during_a_2_gib_upload_sends_no_finished_part_twice() {
    let mut rng = Rng::from_clock();
    let s3 = S3Server::start(KEY, SECRET);
    s3.create_bucket("bucket");
    let proxy = FaultProxy::start(s3.port, FaultPlan::shared(1));
    let cfg = ServiceConfig::default();
    let service = OsmoService::start(cfg.clone());
    let dir = pod_dir("kill-upload");
    write_credentials(&dir, "bucket", &proxy.endpoint(), SECRET);
    let source = dir.join("output/data.bin");
    write_pattern(&source, 2048 * MIB, 77);

    // The first ctrl starts the command; the agent ends once the command has.
    let mut ctrl = start_ctrl(&dir, &cfg, service.port(), &dir);
    let mut agent = Pod::start_agent(&dir, "exit 0");
    assert_eq!(wait_exit(&mut agent, Duration::from_secs(60)), Some(0));

    let mut kill_marks = Vec::new();
    let mut finished_early = false;
    for round in 0..20 {
        std::thread::sleep(Duration::from_millis(100 + rng.below(400)));
        if let Ok(Some(status)) = ctrl.try_wait() {
            println!("round {round}: ctrl had already finished ({status})");
            finished_early = true;
            break;
        }
        // The last interruption is a SIGTERM: ctrl must stop by its drain deadline too.
        if round == 19 {
            let pid = ctrl.id().to_string();
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap();
            let t0 = Instant::now();
            let code = wait_exit(&mut ctrl, Duration::from_secs(15));
            assert!(code.is_some(), "ctrl did not stop within 15 s of SIGTERM");
            println!("SIGTERM: exit {code:?} after {:?}", t0.elapsed());
        } else {
            ctrl.kill().unwrap();
            ctrl.wait().unwrap();
        }
        kill_marks.push(proxy.log().len());
        ctrl = start_ctrl(&dir, &cfg, service.port(), &dir);
    }
    let code = wait_exit(&mut ctrl, Duration::from_secs(300));
    if code != Some(0) {
        let log = proxy.log();
        for (j, e) in log.iter().enumerate().skip(log.len().saturating_sub(40)) {
            println!(
                "{j}: {} {} {:?} fwd={}",
                e.method, e.target, e.status, e.forwarded
            );
        }
        println!("kill marks {kill_marks:?}");
    }
    assert_eq!(code, Some(0), "the last ctrl finishes the upload");
    println!("{} interruptions", kill_marks.len());
    assert!(
        !finished_early,
        "the upload ended before the twentieth interruption"
    );
    assert!(
        same_content(&source, &s3.object_path("bucket", "big/data.bin")),
        "the object differs"
    );

    // A part sent twice is only allowed if its first copy was still in flight when ctrl was
    // interrupted: among the last CONCURRENCY part requests before a kill.
    let log = proxy.log();
    let mut first_seen: HashMap<(String, u32), usize> = HashMap::new();
    let mut resent = 0;
    for (i, e) in log.iter().enumerate() {
        let Some(part) = e.upload_part() else {
            continue;
        };
        match first_seen.get(&part) {
            None => {
                first_seen.insert(part, i);
            }
            Some(&first) => {
                resent += 1;
                let parts_between = |from: usize, to: usize| {
                    log[from..to]
                        .iter()
                        .filter(|e| e.upload_part().is_some())
                        .count()
                };
                // The proxy logs an exchange when it ends: a part in flight at a kill may
                // end (at the store) just after it, before the next ctrl's requests.
                let in_flight_at_a_kill = kill_marks.iter().any(|&mark| {
                    (first < mark && parts_between(first, mark) <= CONCURRENCY * 2)
                        || (first >= mark && parts_between(mark, first) < CONCURRENCY)
                });
                if !in_flight_at_a_kill {
                    for (j, e) in log
                        .iter()
                        .enumerate()
                        .take(i + 3)
                        .skip(first.saturating_sub(12))
                    {
                        println!(
                            "{j}: {} {} {:?} fwd={} {:?}",
                            e.method, e.target, e.status, e.forwarded, e.fault
                        );
                    }
                    println!("kill marks {kill_marks:?}");
                }
                assert!(
                    in_flight_at_a_kill,
                    "part {part:?} was finished (request {first}) and sent again (request {i})"
                );
            }
        }
    }
    let uploads: std::collections::HashSet<_> =
        first_seen.keys().map(|(id, _)| id.clone()).collect();
    println!(
        "{} part uploads, {resent} resent (in flight at an interruption), {} upload ids",
        first_seen.len(),
        uploads.len()
    );
    assert_eq!(uploads.len(), 1, "a restart began a new multipart upload");
    let _ = std::fs::remove_dir_all(&dir);
}
