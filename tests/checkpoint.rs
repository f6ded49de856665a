//! Checkpoints end to end: `sidewire run` with `-checkpoint`, its agent uploading on each
//! period and once more after the command, watched through the store folder and the log.

// The fault proxy, to slow a checkpoint's upload down.
mod common;
// The real S3 server (s3s-fs, SigV4-checking) for the S3 checkpoint.
#[path = "common/s3_server.rs"]
mod s3_server;
#[path = "data_plane/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sidewire-ckpt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The files of a folder (not the copies in progress) and their contents.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .filter_map(|name| Some((name.clone(), std::fs::read(dir.join(&name)).ok()?)))
        .collect()
}

fn lines_with<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn checkpoints_upload_on_each_period_and_the_last_one_completes_before_the_outputs() {
    let work = temp_dir("periodic");
    let ckpt = work.join("output/ckpt");
    let stored = work.join("store/ckpt");
    // Six files over three seconds; f1 is rewritten last, after the last period.
    let script = format!(
        "mkdir -p {c}; for i in 1 2 3 4 5 6; do echo step $i > {c}/f$i; sleep 0.5; done; \
         echo final > {c}/f1",
        c = ckpt.display()
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_sidewire"))
        .arg("run")
        .arg(format!("-workdir={}", work.display()))
        .arg("-checkpoint=ckpt;1")
        .arg("-output=out")
        .args(["--", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sidewire run");

    // Watch the store while the run goes on.
    let started = Instant::now();
    let mut seen: Vec<BTreeMap<String, Vec<u8>>> = Vec::new();
    let mut f2_inode = None;
    while child.try_wait().expect("wait").is_none() {
        assert!(started.elapsed() < Duration::from_secs(60), "run hangs");
        let now = contents(&stored);
        if !now.is_empty() && seen.last() != Some(&now) {
            seen.push(now);
        }
        if f2_inode.is_none() {
            f2_inode = std::fs::metadata(stored.join("f2")).ok().map(|m| m.ino());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let log = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{log}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // At least two uploads came while the command ran, each holding more files.
    let sizes: Vec<usize> = seen.iter().map(BTreeMap::len).collect();
    assert!(
        sizes.len() >= 2,
        "store states seen during the run: {sizes:?}\n{log}"
    );
    assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "{sizes:?}");
    let begun = lines_with(&log, "OSMO_CTRL: Checkpointing data from");
    let started_lines = begun.iter().filter(|l| l.ends_with("...")).count();
    let finished = begun.iter().filter(|l| l.ends_with(" finished")).count();
    assert!(started_lines >= 3 && finished == started_lines, "{log}");

    // The final checkpoint holds the folder as the command left it.
    assert_eq!(contents(&stored), contents(&ckpt));
    assert_eq!(contents(&stored)["f1"], b"final\n");
    assert_eq!(contents(&stored).len(), 6);

    // An unchanged file is not copied again (the journal skips it): same inode.
    let f2_now = std::fs::metadata(stored.join("f2")).expect("f2").ino();
    assert_eq!(f2_inode, Some(f2_now), "f2 was uploaded again");

    // The last checkpoint finished before ctrl began the outputs.
    let lines: Vec<&str> = log.lines().collect();
    let position = |needle: &str| lines.iter().position(|l| l.contains(needle));
    let last_finished = lines
        .iter()
        .rposition(|l| l.contains("Checkpointing data from") && l.ends_with(" finished"));
    let outputs = position("UPLOAD: Uploading file://");
    assert!(
        last_finished.is_some() && outputs.is_some() && last_finished < outputs,
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn a_full_spec_uploads_one_file_and_a_failed_checkpoint_is_only_logged() {
    let work = temp_dir("file");
    let model = work.join("model.pt");
    let elsewhere = work.join("elsewhere");
    let script = format!(
        "echo one > {m}; sleep 1.5; echo two > {m}",
        m = model.display()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sidewire"))
        .arg("run")
        .arg(format!("-workdir={}", work.display()))
        .arg(format!(
            "-checkpoint={}/absent;file://{};1;",
            work.display(),
            elsewhere.display()
        ))
        .arg(format!(
            "-checkpoint={};file://{};1;",
            model.display(),
            elsewhere.display()
        ))
        .args(["--", "sh", "-c", &script])
        .output()
        .expect("sidewire run");
    let log = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let failed = lines_with(&log, "absent to file://");
    assert!(
        failed
            .iter()
            .any(|l| l.contains(" failed: ") && l.contains("OSMO_CTRL")),
        "{log}"
    );
    // The file lands at url/<file name>, as it was at the end; nothing else is uploaded.
    let stored = contents(&elsewhere);
    assert_eq!(stored.keys().collect::<Vec<_>>(), ["model.pt"], "{log}");
    assert_eq!(stored["model.pt"], b"two\n");
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn checkpoints_upload_to_a_real_s3_server_with_the_user_credentials() {
    const KEY: &str = "AKIDSIDEWIRECKPT";
    const SECRET: &str = "sidewire-checkpoint-secret-0123";
    let s3 = s3_server::S3Server::start(KEY, SECRET);
    s3.create_bucket("bucket");
    let work = temp_dir("s3");
    write_credentials(&work, KEY, SECRET, &s3.endpoint());
    let ckpt = work.join("ckpt");
    // 3 MiB of changing bytes, then a small file; `/*` uploads the folder's contents.
    let script = format!(
        "mkdir -p {c}; head -c 3145728 /dev/urandom > {c}/weights.bin; sleep 1.5; \
         echo done > {c}/step.txt; echo skip > {c}/debug.log",
        c = ckpt.display()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sidewire"))
        .arg("run")
        .arg(format!("-workdir={}", work.display()))
        .arg(format!(
            "-checkpoint={}/*;s3://bucket/run/ckpt;1;.*\\.(bin|txt)$",
            ckpt.display()
        ))
        .args(["--", "sh", "-c", &script])
        .output()
        .expect("sidewire run");
    let log = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{log}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        lines_with(&log, "OSMO_CTRL: Checkpointing data from")
            .iter()
            .all(|l| !l.contains(" failed")),
        "{log}"
    );
    for name in ["weights.bin", "step.txt"] {
        let stored = std::fs::read(s3.object_path("bucket", &format!("run/ckpt/{name}")))
            .unwrap_or_else(|e| panic!("{name}: {e}\n{log}"));
        assert_eq!(stored, std::fs::read(ckpt.join(name)).unwrap(), "{name}");
    }
    assert!(
        !s3.object_path("bucket", "run/ckpt/debug.log").exists(),
        "the regex leaves debug.log out"
    );
    let _ = std::fs::remove_dir_all(&work);
}

/// A checkpoint folder holding links out of it: each is skipped and named, its in-folder
/// link uploads as its target, and no secret byte reaches the store.
#[test]
fn a_checkpoint_skips_links_out_of_its_folder_and_names_them() {
    let work = temp_dir("escapes");
    let escapes = support::plant_escapes(&work.join("output/ckpt"), &work);
    let out = Command::new(env!("CARGO_BIN_EXE_sidewire"))
        .arg("run")
        .arg(format!("-workdir={}", work.display()))
        .arg("-checkpoint=ckpt;1")
        .args(["--", "sleep", "1.5"])
        .output()
        .expect("sidewire run");
    let log = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{log}");
    support::assert_named_in("OSMO_CTRL:", &log, &escapes.skipped);
    let store = work.join("store");
    assert_eq!(support::holding_secret(&store), Vec::<PathBuf>::new());
    assert_eq!(
        std::fs::read(store.join("ckpt/inside-link")).unwrap(),
        b"inside"
    );
    assert!(!store.join("ckpt/to-secret-folder").exists());
    let _ = std::fs::remove_dir_all(&work);
}

/// `sidewire run` hands its agent WORKDIR/credentials.yaml as -userConfig: the key pair
/// for `s3://bucket` at `endpoint`.
fn write_credentials(work: &Path, key: &str, secret: &str, endpoint: &str) {
    std::fs::write(
        work.join("credentials.yaml"),
        format!(
            "auth:\n  data:\n    s3://bucket:\n      access_key_id: {key}\n      access_key: {secret}\n      \
             override_url: {endpoint}\n      region: us-east-1\n      addressing_style: path\n"
        ),
    )
    .unwrap();
}

/// The pids of `parent`'s children.
fn children_of(parent: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn sigterm_to_the_agent_lets_the_command_save_then_the_final_checkpoint_uploads_and_is_reported() {
    let work = temp_dir("sigterm");
    let ckpt = work.join("output/ckpt");
    let stored = work.join("store/ckpt");
    let ready = work.join("ready");
    // A training job that saves its state when told to stop.
    let script = format!(
        "mkdir -p {c}; echo early > {c}/state; trap 'echo saved > {c}/state; exit 7' TERM; \
         touch {r}; while :; do sleep 0.1; done",
        c = ckpt.display(),
        r = ready.display()
    );
    // A period far beyond the test: only the final checkpoint runs.
    let mut child = Command::new(env!("CARGO_BIN_EXE_sidewire"))
        .arg("run")
        .arg(format!("-workdir={}", work.display()))
        .arg("-checkpoint=ckpt;600")
        .args(["--", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sidewire run");
    let started = Instant::now();
    while !ready.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the command starts"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Kubernetes signals the user container's PID 1: the agent, not ctrl.
    let agent = children_of(child.id());
    assert_eq!(agent.len(), 1, "the run's one child is its agent");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(agent[0] as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    while child.try_wait().expect("wait").is_none() {
        assert!(started.elapsed() < Duration::from_secs(60), "run hangs");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let log = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{log}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(contents(&stored)["state"], b"saved\n", "{log}");
    let lines: Vec<&str> = log.lines().collect();
    let uploaded = lines
        .iter()
        .position(|l| l.contains("Checkpointing data from") && l.ends_with(" finished"));
    let reported = lines
        .iter()
        .position(|l| l.contains("Command failed with error: exit status 7"));
    assert!(
        uploaded.is_some() && reported.is_some() && uploaded < reported,
        "the final checkpoint is uploaded, then the command's end reported\n{log}"
    );
    let _ = std::fs::remove_dir_all(&work);
}

/// A run whose final checkpoint takes two seconds to upload, and `signals` SIGTERMs sent
/// to its agent while it uploads: the run's code, its log and the stored checkpoint.
fn final_checkpoint_under_sigterm(
    name: &str,
    signals: usize,
) -> (Option<i32>, String, Option<Vec<u8>>) {
    use common::fault_proxy::{Fault, FaultPlan, FaultProxy, Rule};
    use std::io::BufRead;

    const KEY: &str = "AKIDSIDEWIRECKPT";
    const SECRET: &str = "sidewire-checkpoint-secret-0123";
    let s3 = s3_server::S3Server::start(KEY, SECRET);
    s3.create_bucket("bucket");
    // The final checkpoint's upload takes two seconds: the pod is deleted meanwhile.
    let plan = FaultPlan::shared(1);
    plan.lock()
        .unwrap()
        .push(Rule::next(1, Fault::Stall(Duration::from_secs(2))).method("PUT"));
    let proxy = FaultProxy::start(s3.port, plan);
    let work = temp_dir(name);
    write_credentials(&work, KEY, SECRET, &proxy.endpoint());
    let ckpt = work.join("ckpt");
    // The command ends on its own; only the final checkpoint runs.
    let script = format!("mkdir -p {c}; echo weights > {c}/w.bin", c = ckpt.display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_sidewire"))
        .arg("run")
        .arg(format!("-workdir={}", work.display()))
        .arg(format!(
            "-checkpoint={}/*;s3://bucket/run;600;",
            ckpt.display()
        ))
        .args(["--", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sidewire run");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut log = String::new();
    while !log.ends_with("...\n") {
        let before = log.len();
        stdout.read_line(&mut log).expect("read the log");
        assert!(log.len() > before, "the final checkpoint begins\n{log}");
    }
    let agent = children_of(child.id());
    assert_eq!(agent.len(), 1, "the run's one child is its agent");
    for _ in 0..signals {
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(agent[0] as i32).unwrap(),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    std::io::Read::read_to_string(&mut stdout, &mut log).expect("read the log");
    let code = child.wait().expect("wait").code();
    let stored = std::fs::read(s3.object_path("bucket", "run/w.bin")).ok();
    let _ = std::fs::remove_dir_all(&work);
    (code, log, stored)
}

#[test]
fn sigterm_during_the_final_checkpoint_lets_it_finish() {
    let (code, log, stored) = final_checkpoint_under_sigterm("sigterm-final", 1);
    assert_eq!(code, Some(0), "{log}");
    assert!(
        lines_with(&log, "Checkpointing data from")
            .iter()
            .any(|l| l.ends_with(" finished")),
        "{log}"
    );
    assert_eq!(stored, Some(b"weights\n".to_vec()), "{log}");
}

#[test]
fn a_second_sigterm_cancels_the_final_checkpoint_and_the_end_is_still_reported() {
    let (code, log, stored) = final_checkpoint_under_sigterm("sigterm-twice", 2);
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("cancelled: the container is stopping"),
        "{log}"
    );
    assert_eq!(stored, None, "{log}");
}
