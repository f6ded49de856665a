//! `sidewire run`, dispatch by program name, command-line errors and the init step,
//! driven through the real binary and real child processes.

#[path = "data_plane/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sidewire() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sidewire"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sidewire-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn run_task(workdir: &Path, command: &[&str]) -> Output {
    sidewire()
        .arg("run")
        .arg(format!("-workdir={}", workdir.display()))
        .arg("--")
        .args(command)
        .output()
        .expect("sidewire run")
}

fn stdout_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn run_prints_each_line_with_time_source_and_stream_and_exits_with_the_command_code() {
    let dir = temp_dir("codes");
    let out = run_task(&dir, &["sh", "-c", "echo hello; echo oops >&2; exit 3"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = stdout_lines(&out);
    let hello = lines
        .iter()
        .find(|l| l.ends_with("task STDOUT: hello"))
        .expect("hello line");
    // RFC 3339 UTC time first.
    assert!(
        hello.as_bytes()[4] == b'-'
            && hello.contains('T')
            && hello.split(' ').next().unwrap().ends_with('Z'),
        "{hello}"
    );
    assert!(
        lines.iter().any(|l| l.ends_with("task STDERR: oops")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("STDERR: Command failed with error: exit status 3")),
        "{lines:?}"
    );

    let ok = run_task(&dir, &["true"]);
    assert_eq!(ok.status.code(), Some(0));
}

#[test]
fn run_delivers_a_200k_line_burst_whole_and_in_order() {
    let dir = temp_dir("burst");
    let out = run_task(&dir, &["seq", "200000"]);
    assert_eq!(out.status.code(), Some(0));
    let numbers: Vec<u64> = stdout_lines(&out)
        .iter()
        .filter_map(|l| l.split_once("STDOUT: ").and_then(|(_, n)| n.parse().ok()))
        .collect();
    assert_eq!(numbers.len(), 200_000, "lines missing");
    assert!(
        numbers.iter().zip(1..).all(|(n, want)| *n == want),
        "lines out of order"
    );
}

#[test]
fn long_lines_arrive_in_32_kib_pieces() {
    let dir = temp_dir("long");
    let out = run_task(
        &dir,
        &["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x; echo"],
    );
    assert_eq!(out.status.code(), Some(0));
    let pieces: Vec<usize> = stdout_lines(&out)
        .iter()
        .filter_map(|l| l.split_once("STDOUT: ").map(|(_, t)| t.len()))
        .collect();
    assert_eq!(pieces, [32768, 32768, 32768, 1696]);
}

#[test]
fn a_command_that_cannot_start_fails_with_127() {
    let dir = temp_dir("missing");
    let out = run_task(&dir, &["/nonexistent/program"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stdout).contains("cannot start"));
}

#[test]
fn program_names_pick_the_role_and_bad_flags_exit_2_with_usage() {
    let dir = temp_dir("names");
    for name in ["osmo_ctrl", "osmo_exec"] {
        let link = dir.join(name);
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_sidewire"), &link).expect("symlink");
        let help = Command::new(&link).arg("-help").output().expect("run");
        assert_eq!(help.status.code(), Some(0));
        assert!(
            String::from_utf8_lossy(&help.stdout).contains("-socketPath"),
            "{name} usage"
        );
        let bad = Command::new(&link)
            .arg("-noSuchFlag")
            .output()
            .expect("run");
        assert_eq!(bad.status.code(), Some(2));
        let err = String::from_utf8_lossy(&bad.stderr);
        assert!(err.contains("noSuchFlag") && err.contains("Usage"), "{err}");
    }
    let bad = sidewire()
        .args(["ctrl", "-port", "99999"])
        .output()
        .expect("run");
    assert_eq!(bad.status.code(), Some(2));
    let unknown = sidewire().arg("frobnicate").output().expect("run");
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn init_prepares_empty_volumes_and_leaves_used_ones_alone() {
    let dir = temp_dir("init");
    let (data, login, bin, run, binaries, source) = (
        dir.join("data"),
        dir.join("login"),
        dir.join("bin"),
        dir.join("run"),
        dir.join("binaries"),
        dir.join("src"),
    );
    std::fs::create_dir_all(data.join("lost+found")).unwrap();
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("login.yaml"), "auth: x\n").unwrap();
    let init = |extra: &[&str]| {
        sidewire()
            .arg("init")
            .arg(format!("--data_location={}", data.display()))
            .arg(format!("--login_location={}", login.display()))
            .arg(format!("--user_bin_location={}", bin.display()))
            .arg(format!("--run_location={}", run.display()))
            .args(extra)
            .env("SIDEWIRE_INIT_SOURCE", &source)
            .env("SIDEWIRE_INIT_BINARIES", &binaries)
            .output()
            .expect("init")
    };
    let out = init(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    use std::os::unix::fs::PermissionsExt;
    for sub in ["benchmarks", "input", "output", "socket"] {
        let mode = std::fs::metadata(data.join(sub))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o777, "{sub}");
    }
    for name in ["osmo_exec", "osmo_ctrl"] {
        let mode = std::fs::metadata(binaries.join("osmo").join(name))
            .unwrap()
            .permissions()
            .mode();
        // Not world-writable: the user container must not be able to replace ctrl.
        assert_eq!(mode & 0o777, 0o755, "{name}");
    }
    assert_eq!(
        std::fs::read_to_string(login.join("user/config/login.yaml")).unwrap(),
        "auth: x\n"
    );
    assert!(run.join("workspace").is_dir());

    // A restarted pod: the data volume holds something, nothing is touched.
    std::fs::remove_dir_all(&binaries).unwrap();
    assert_eq!(init(&[]).status.code(), Some(0));
    assert!(!binaries.exists());
}

#[test]
fn sigterm_to_a_run_reaches_the_command_and_its_code_is_the_runs() {
    let dir = temp_dir("sigterm");
    let script = "trap 'echo got-term; exit 5' TERM; echo ready; sleep 30 & wait";
    let mut child = sidewire()
        .arg("run")
        .arg(format!("-workdir={}", dir.display()))
        .args(["--", "sh", "-c", script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sidewire run");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    assert!(first.ends_with("STDOUT: ready\n"), "{first}");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(5), "{rest}");
    assert!(rest.contains("STDOUT: got-term"), "{rest}");
}

#[test]
fn the_output_folder_is_made_readable_after_the_command() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("readable");
    let output = dir.join("output");
    let script = format!(
        "umask 077; mkdir -p {0}/d; echo x > {0}/d/secret",
        output.display()
    );
    let out = run_task(&dir, &["sh", "-c", &script]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    // The work folder holds the agent's socket and the journal: this user's alone.
    assert_eq!(mode(&dir), 0o700, "the work folder");
    assert_eq!(mode(&dir.join("journal.db")), 0o600, "the journal");
    assert_eq!(mode(&output.join("d")), 0o755, "folders become a+rx");
    assert_eq!(mode(&output.join("d/secret")), 0o644, "files become a+r");
}

/// Links out of the output folder, planted before the command and removed by it before
/// it ends: the uploads while it runs (and the final one, for the links that stay) skip
/// and name each one, and no secret byte reaches the `file://` store.
#[test]
fn links_out_of_the_output_folder_never_reach_a_folder_store() {
    let dir = temp_dir("escapes");
    let output = dir.join("output");
    let escapes = support::plant_escapes(&output, &dir);
    let kpi = escapes.file.display().to_string();
    let script = format!(
        "sleep 4; rm {0}/to-secret-file {0}/sub/relative-to-secret",
        output.display()
    );
    let out = sidewire()
        .arg("run")
        .arg(format!("-workdir={}", dir.display()))
        .arg("-uploadWhileRunning=1")
        .arg("-output=r")
        .arg(format!(
            "-output=kpi:file://{}/k,{kpi}",
            dir.join("store").display()
        ))
        .args(["--", "sh", "-c", &script])
        .output()
        .expect("sidewire run");
    let log = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{log}");
    support::assert_named_as_skipped(&log, &escapes.skipped);
    support::assert_named_as_skipped(&log, &[&kpi]);
    let store = dir.join("store");
    assert_eq!(support::holding_secret(&store), Vec::<PathBuf>::new());
    for name in ["inside-link", "sub/real.txt"] {
        assert_eq!(
            std::fs::read(store.join("r").join(name)).unwrap(),
            b"inside"
        );
    }
    assert!(!store.join("r/to-secret-folder").exists());
}

/// The processes whose command line holds `word` as one of its arguments.
fn processes_with_argument(word: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|&b| b == 0).any(|w| w == word.as_bytes()))
        })
        .collect()
}

#[test]
fn a_run_returns_with_nothing_the_command_started_left_running() {
    let dir = temp_dir("leftovers");
    // Arguments no other process has, to find each `sleep` by; the second one ignores
    // SIGTERM, so only the SIGKILL after the grace ends it.
    let seconds = format!("100.{}", std::process::id());
    let stubborn = format!("101.{}", std::process::id());
    let script = format!("sleep {seconds} & (trap '' TERM; exec sleep {stubborn}) & echo hi");
    let out = run_task(&dir, &["sh", "-c", &script]);
    let mut left = processes_with_argument(&seconds);
    left.extend(processes_with_argument(&stubborn));
    for pid in &left {
        let _ = Command::new("kill").args(["-KILL", pid]).status();
    }
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout_lines(&out)
            .iter()
            .any(|l| l.ends_with("task STDOUT: hi")),
        "{:?}",
        stdout_lines(&out)
    );
    assert_eq!(
        left,
        Vec::<String>::new(),
        "a `sleep` of the command outlived the run"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// On a terminal, `run` shows a transfer as one status line redrawn in place and leaves
/// its summary; on a pipe (every other test here) the usual log lines stay.
#[test]
fn on_a_terminal_a_transfer_shows_a_live_status_line_and_leaves_a_summary() {
    use std::io::Read;
    let dir = temp_dir("live-status");
    support::write_pattern(&dir.join("output/big.bin"), 64 * support::MIB, 3);
    let pty = sidewire::sys::pty::open_pair().unwrap();
    sidewire::sys::pty::set_size(&pty.master, 24, 200).unwrap();
    let mut child = sidewire()
        .arg("run")
        .arg(format!("-workdir={}", dir.display()))
        .args(["-output=results", "--", "true"])
        .stdout(std::process::Stdio::from(pty.slave))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The slave went to the child; reading the master ends (EIO) once it exits.
    let mut screen = Vec::new();
    let _ = std::fs::File::from(pty.master).read_to_end(&mut screen);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let screen = String::from_utf8_lossy(&screen);
    let store = format!("file://{}/store/results", dir.display());
    let live = screen
        .split("\r\x1b[K")
        .filter(|s| s.starts_with(&format!("Uploading {store}: ")) && s.contains(" files, "))
        .filter(|s| s.contains(", ETA "))
        .count();
    assert!(live >= 1, "no live line: {screen:?}");
    let summary = format!("\r\x1b[KUploading {store}: 1 files, 64.0 MiB in ");
    let after = screen
        .split_once(&summary)
        .unwrap_or_else(|| panic!("no summary: {screen:?}"))
        .1;
    assert!(
        after.split("\r\n").next().unwrap().ends_with("/s)"),
        "{after:?}"
    );
    // The status line takes the place of the progress log lines.
    assert!(
        !screen.contains(&format!("UPLOAD: Uploading {store}: ")),
        "{screen:?}"
    );
    assert!(screen.contains("All Outputs Uploaded"), "{screen:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
