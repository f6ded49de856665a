//! SIGTERM means the pod is going away: ctrl finishes what it can (the command's last
//! lines, the output upload, LOG_DONE) within `-drainTimeout`, exits 0 if all was
//! delivered, and otherwise leaves the rest in the journal for the next ctrl. Against
//! the real S3 server (s3s-fs) behind a proxy that logs every request, with the OSMO
//! service stand-in, ctrl and the agent as separate processes.

mod common;
#[path = "common/s3_server.rs"]
mod s3_server;
#[path = "data_plane/support.rs"]
mod support;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fault_proxy::{Exchange, Fault, FaultPlan, FaultProxy, Rule};
use common::pod::{io_type, pod_dir, texts_of, wait_exit, Pod};
use common::{OsmoService, ServiceConfig};
use s3_server::S3Server;
use sidewire::data::journal::{Direction, Journal};
use support::*;

/// The output file's size: its upload takes a few seconds here (1 GiB took 20 s through
/// s3s-fs and the proxy on this machine, too close to the deadline for a test that must not
/// flake). `SIDEWIRE_DRAIN_TEST_MIB=1024` measures the issue's 1 GiB case by hand.
fn size() -> u64 {
    std::env::var("SIDEWIRE_DRAIN_TEST_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
        * MIB
}
const LONG: Duration = Duration::from_secs(120);

struct Task {
    s3: S3Server,
    proxy: FaultProxy,
    /// The proxy's faults (none unless a test adds some).
    plan: Arc<Mutex<FaultPlan>>,
    service: OsmoService,
    cfg: ServiceConfig,
    dir: std::path::PathBuf,
}

impl Task {
    fn new(name: &str) -> Task {
        let s3 = S3Server::start(KEY, SECRET);
        s3.create_bucket("bucket");
        let plan = FaultPlan::shared(1);
        let proxy = FaultProxy::start(s3.port, plan.clone());
        let cfg = ServiceConfig::default();
        let service = OsmoService::start(cfg.clone());
        let dir = pod_dir(name);
        write_credentials(&dir, "bucket", &proxy.endpoint(), SECRET);
        Task {
            s3,
            proxy,
            plan,
            service,
            cfg,
            dir,
        }
    }

    fn start_ctrl(&self, extra: &[&str]) -> Child {
        let journal = self.dir.join("journal/journal.db");
        let creds = self.dir.join("credentials.yaml");
        let mut flags = vec![
            "-outputs".to_string(),
            "url:s3://bucket/out,".into(),
            "-userConfig".into(),
            creds.display().to_string(),
            "-journal".into(),
            journal.display().to_string(),
        ];
        flags.extend(extra.iter().map(|s| s.to_string()));
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        Pod::start_ctrl(&self.dir, &self.cfg, self.service.port(), &flags)
    }

    fn stored(&self, name: &str) -> std::path::PathBuf {
        self.s3.object_path("bucket", &format!("out/{name}"))
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

fn reap(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// SIGTERM to ctrl, then its exit code and how long after the signal it came (within
/// 30 s); the agent is reaped after.
fn sigterm_and_wait(ctrl: &mut Child, agent: Child) -> (Option<i32>, Duration) {
    signal(ctrl, "-TERM");
    let at_signal = Instant::now();
    let code = wait_exit(ctrl, Duration::from_secs(30));
    let took = at_signal.elapsed();
    reap(agent);
    println!("ctrl exited {code:?} {took:?} after SIGTERM");
    (code, took)
}

/// Parts the store took (a 2xx answer) among `log`.
fn stored_parts(log: &[Exchange]) -> HashSet<(String, u32)> {
    log.iter()
        .filter(|e| e.status.is_some_and(|s| (200..300).contains(&s)))
        .filter_map(Exchange::upload_part)
        .collect()
}

fn completions(log: &[Exchange]) -> usize {
    log.iter()
        .filter(|e| e.method == "POST" && e.target.contains("uploadId="))
        .count()
}

fn creations(log: &[Exchange]) -> usize {
    log.iter()
        .filter(|e| e.method == "POST" && e.target.contains("?uploads"))
        .count()
}

/// Waits until the store took `n` parts of the upload.
fn wait_for_parts(proxy: &FaultProxy, n: usize) {
    let deadline = Instant::now() + LONG;
    while stored_parts(&proxy.log()).len() < n {
        assert!(Instant::now() < deadline, "the upload did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_in_the_middle_of_an_upload_lets_it_finish_and_ctrl_exits_0() {
    let task = Task::new("drain-finish");
    let source = task.dir.join("output/data.bin");
    write_pattern(&source, size(), 11);
    let mut ctrl = task.start_ctrl(&[]);
    let agent = Pod::start_agent(&task.dir, "exit 0");
    wait_for_parts(&task.proxy, 2);

    signal(&ctrl, "-TERM");
    let at_signal = Instant::now();
    let log_at_signal = task.proxy.log();
    let code = wait_exit(&mut ctrl, Duration::from_secs(60));
    let took = at_signal.elapsed();
    reap(agent);
    println!(
        "{} of {} MiB parts were stored at SIGTERM; ctrl exited {code:?} {took:?} after it",
        stored_parts(&log_at_signal).len(),
        size() / MIB
    );
    assert_eq!(
        completions(&log_at_signal),
        0,
        "the upload was not in the middle at the signal"
    );
    assert_eq!(code, Some(0), "everything was delivered: exit 0");
    assert!(
        took < Duration::from_secs(25),
        "ctrl overran its drain deadline"
    );
    assert!(
        same_content(&source, &task.stored("data.bin")),
        "the object is not whole"
    );
    let messages = task.service.messages();
    assert_eq!(task.service.violations(), Vec::<String>::new());
    assert_eq!(messages.last().map(io_type).as_deref(), Some("LOG_DONE"));
    assert!(
        texts_of(&messages, "OSMO_CTRL")
            .iter()
            .any(|t| t.starts_with("Received signal 15")),
        "the signal is logged to the service"
    );
}

#[test]
fn a_drain_deadline_too_short_exits_at_it_and_the_next_ctrl_sends_only_the_rest() {
    let task = Task::new("drain-cut");
    let source = task.dir.join("output/data.bin");
    write_pattern(&source, size(), 12);
    let mut ctrl = task.start_ctrl(&["-drainTimeout", "1"]);
    let agent = Pod::start_agent(&task.dir, "exit 0");
    wait_for_parts(&task.proxy, 2);

    let (code, took) = sigterm_and_wait(&mut ctrl, agent);
    assert_eq!(code, Some(143), "the upload was cut: 128 + SIGTERM");
    assert!(
        took >= Duration::from_millis(900),
        "ctrl went on until its deadline"
    );
    assert!(took < Duration::from_secs(5), "ctrl exits at the deadline");
    // What was in flight at the exit reaches the store (or not) before the next ctrl.
    std::thread::sleep(Duration::from_millis(500));
    let before = task.proxy.log();
    assert_eq!(completions(&before), 0, "the upload was finished already");
    let (upload_id, journaled) = journaled_parts(&task.dir);
    let stored = stored_parts(&before);
    for number in &journaled {
        assert!(
            stored.contains(&(upload_id.clone(), *number)),
            "part {number} is journaled as done but the store never took it"
        );
    }

    let mut next = task.start_ctrl(&[]);
    assert_eq!(
        wait_exit(&mut next, LONG),
        Some(0),
        "the next ctrl finishes"
    );
    assert!(
        same_content(&source, &task.stored("data.bin")),
        "the object is not whole"
    );
    let log = task.proxy.log();
    let after = &log[before.len()..];
    let sent_after: Vec<(String, u32)> = after.iter().filter_map(Exchange::upload_part).collect();
    println!(
        "{} parts journaled before the cut ({} stored), {} sent by the next ctrl",
        journaled.len(),
        stored.len(),
        sent_after.len()
    );
    assert!(!journaled.is_empty(), "parts were journaled before the cut");
    assert!(!sent_after.is_empty(), "the cut left parts to send");
    for (id, number) in &sent_after {
        assert_eq!(id, &upload_id, "the next ctrl sent to another upload");
        assert!(
            !journaled.contains(number),
            "part {number}, done before the cut, was sent again"
        );
    }
    assert_eq!(creations(after), 0, "the next ctrl began a new upload");
}

/// The upload id and the part numbers the journal records as done for the output.
fn journaled_parts(dir: &Path) -> (String, HashSet<u32>) {
    let journal = Journal::open(&dir.join("journal/journal.db")).expect("journal");
    let transfer = journal
        .transfer(Direction::Upload, "url:s3://bucket/out,")
        .expect("transfer");
    let record = journal
        .multipart(transfer, "data.bin")
        .expect("multipart")
        .expect("the upload is recorded");
    let parts = journal.parts(transfer, "data.bin").expect("parts");
    (
        record.upload_id,
        parts.into_iter().map(|p| p.number).collect(),
    )
}

#[test]
fn sigterm_while_the_command_runs_lets_it_save_and_its_output_is_uploaded() {
    let task = Task::new("drain-running");
    // The command saves its state on SIGTERM, as a training job writes a checkpoint.
    let script = "trap 'echo saving; echo state > output/final.txt; exit 0' TERM; \
                  echo started; while :; do sleep 0.1; done";
    let mut ctrl = task.start_ctrl(&[]);
    let mut agent = Pod::start_agent(&task.dir, script);
    assert!(
        task.service.wait_for(
            |m| texts_of(m, "STDOUT").iter().any(|t| t == "started"),
            LONG
        ),
        "the command runs"
    );
    // The pod is deleted: every container gets SIGTERM.
    signal(&ctrl, "-TERM");
    signal(&agent, "-TERM");
    let at_signal = Instant::now();
    let code = wait_exit(&mut ctrl, Duration::from_secs(60));
    println!(
        "ctrl exited {code:?} {:?} after SIGTERM",
        at_signal.elapsed()
    );
    assert_eq!(code, Some(0), "everything was delivered: exit 0");
    assert_eq!(wait_exit(&mut agent, LONG), Some(0));
    assert_eq!(
        std::fs::read_to_string(task.stored("final.txt"))
            .ok()
            .as_deref(),
        Some("state\n"),
        "the file the command wrote on SIGTERM is in the store"
    );
    let messages = task.service.messages();
    assert!(texts_of(&messages, "STDOUT").iter().any(|t| t == "saving"));
    assert_eq!(messages.last().map(io_type).as_deref(), Some("LOG_DONE"));
}

#[test]
fn sigterm_while_inputs_download_stops_at_once_and_the_command_never_runs() {
    let task = Task::new("drain-inputs");
    // The store's answers are held back: the download is still going at the signal.
    task.plan
        .lock()
        .unwrap()
        .push(Rule::fraction(1.0, Fault::Stall(Duration::from_secs(30))).method("GET"));
    let input = task.dir.join("input");
    let mut ctrl = task.start_ctrl(&[
        "-inputs",
        "url:in,s3://bucket/in,",
        "-inputPath",
        input.to_str().unwrap(),
    ]);
    let agent = Pod::start_agent(&task.dir, "echo ran > marker");
    assert!(
        task.service
            .wait_for(|m| !texts_of(m, "DOWNLOAD").is_empty(), LONG),
        "the download starts"
    );
    let (code, took) = sigterm_and_wait(&mut ctrl, agent);
    assert_eq!(code, Some(143));
    assert!(
        took < Duration::from_secs(5),
        "nothing to save before the command: no waiting for the drain deadline"
    );
    assert!(!task.dir.join("marker").exists(), "the command ran");
    assert!(texts_of(&task.service.messages(), "OSMO_CTRL")
        .iter()
        .any(|t| t == "Received signal 15 before the command ran: stopping"));
}

#[test]
fn a_local_run_stopped_by_sigterm_still_uploads_its_outputs() {
    let dir = temp_dir("drain-local");
    let script = "trap 'echo state > \"$SIDEWIRE_OUTPUT_PATH/final.txt\"; exit 0' TERM; \
                  echo ready; while :; do sleep 0.1; done";
    let mut run = Command::new(env!("CARGO_BIN_EXE_sidewire"))
        .arg("run")
        .arg(format!("-workdir={}", dir.display()))
        .args(["-output", "r", "--", "sh", "-c", script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sidewire run");
    let mut stdout = std::io::BufReader::new(run.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    assert!(first.ends_with("STDOUT: ready\n"), "{first}");
    signal(&run, "-TERM");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(run.wait().unwrap().code(), Some(0), "{rest}");
    let stored = dir.join("store/r/final.txt");
    assert_eq!(
        std::fs::read_to_string(&stored).ok().as_deref(),
        Some("state\n"),
        "{rest}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
