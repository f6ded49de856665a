//! The agent's rsync daemon (`-enableRsync`) against a test-played ctrl on the agent's
//! socket and a real `rsync` client: the status reports, a push and pull through the
//! daemon, read-only modules, a restart after the daemon is killed, no binary at all,
//! OSMO's own daemon binary, and `init --enable_rsync`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use common::pod::{pod_dir, wait_exit};
use rustix::process::{Pid, Signal};
use sidewire::proto::ipc::{AgentState, Hello, Message, MsgType};

/// The agent's period between status reports.
const PERIOD: Duration = Duration::from_secs(5);
const LONG: Duration = Duration::from_secs(30);

/// ctrl as the agent sees it: its socket, the agent's messages as they arrive (with the
/// time), and the connection to answer on.
struct TestCtrl {
    messages: Receiver<(Instant, Message)>,
    conn: UnixStream,
    /// Messages received and not yet looked at by [`TestCtrl::wait_for`].
    seen: Vec<(Instant, Message)>,
}

impl TestCtrl {
    /// Accepts the agent, checks its greeting (returned) and answers it as ctrl does, then
    /// sends ExecStart.
    fn accept(listener: &UnixListener) -> (TestCtrl, Hello) {
        let (conn, _) = listener.accept().expect("the agent dials");
        let reader = conn.try_clone().expect("clone");
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                let m = Message::decode(line.as_bytes()).expect("a well-formed message");
                if tx.send((Instant::now(), m)).is_err() {
                    break;
                }
            }
        });
        let mut ctrl = TestCtrl {
            messages,
            conn,
            seen: Vec::new(),
        };
        let (_, hello) = ctrl.wait_for(|m| m.kind == MsgType::Hello, LONG);
        let hello = hello.hello.expect("the greeting's Sidewire object");
        let mut answer = Message::new(MsgType::Hello);
        answer.hello = Some(Hello {
            version: 1,
            features: vec![],
            state: AgentState::Idle,
            seq: 0,
            rsync_read_limit: 0,
            rsync_write_limit: 0,
        });
        ctrl.send(&answer);
        ctrl.send(&Message::new(MsgType::ExecStart));
        (ctrl, hello)
    }

    fn send(&mut self, m: &Message) {
        let mut line = Vec::new();
        m.encode(&mut line);
        self.conn.write_all(&line).expect("write to the agent");
    }

    /// The first message (earlier ones not yet taken included) matching `want`.
    fn wait_for(
        &mut self,
        want: impl Fn(&Message) -> bool,
        timeout: Duration,
    ) -> (Instant, Message) {
        if let Some(i) = self.seen.iter().position(|(_, m)| want(m)) {
            return self.seen.remove(i);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok((at, m)) if want(&m) => return (at, m),
                Ok(other) => self.seen.push(other),
                Err(RecvTimeoutError::Timeout) => panic!("timed out; got {:#?}", self.seen),
                Err(RecvTimeoutError::Disconnected) => panic!("agent gone; got {:#?}", self.seen),
            }
        }
    }

    /// The next status report, after every message before it is set aside.
    fn next_status(&mut self, timeout: Duration) -> (Instant, bool, i64) {
        self.seen
            .retain(|(_, m)| m.kind != MsgType::UserRsyncStatus);
        let (at, m) = self.wait_for(|m| m.kind == MsgType::UserRsyncStatus, timeout);
        (at, m.rsync_running, m.task_port)
    }

    /// Every message until the agent closes the connection.
    fn rest(&mut self) -> Vec<Message> {
        let mut all: Vec<Message> = self.seen.drain(..).map(|(_, m)| m).collect();
        while let Ok((_, m)) = self.messages.recv_timeout(LONG) {
            all.push(m);
        }
        all
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn agent(dir: &Path, extra: &[&str], script: &str) -> Child {
    let mut command = Command::new(dir.join("osmo_exec"));
    command
        .arg(format!("-socketPath={}", dir.join("ctrl.sock").display()))
        .arg("-unixTimeout=1")
        .arg(format!(
            "-historyFilePath={}",
            dir.join("history").display()
        ))
        .arg(format!("-runLocation={}", dir.join("run").display()))
        .args(extra)
        .args(["-commands", "/bin/sh", "-args", "-c", "-args", script])
        .env("SIDEWIRE_PASSTHROUGH", "0")
        .stdout(Stdio::null());
    command.spawn().expect("start osmo_exec")
}

fn rsync(args: &[&str]) -> Output {
    Command::new("rsync")
        .args(args)
        .output()
        .expect("run rsync")
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "rsync failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The agent's child named `rsync`, by /proc.
fn daemon_pid(agent: u32) -> Option<i32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // pid (comm) state ppid ...
            let (comm, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
            let ppid: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
            (comm == "rsync" && ppid == agent).then_some(pid)
        })
}

/// True once `pid` is gone (or a zombie nobody waits for).
fn gone(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z'))
    })
}

fn write_tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    // A few MB that do not compress to nothing.
    let mut big = Vec::with_capacity(3 << 20);
    let mut x: u32 = 12345;
    while big.len() < 3 << 20 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        big.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(root.join("sub/big.bin"), &big).unwrap();
    std::fs::write(root.join("a.txt"), "hello\n").unwrap();
    std::fs::write(root.join("sub/deeper/empty"), "").unwrap();
}

fn same_tree(a: &Path, b: &Path) {
    for rel in ["a.txt", "sub/big.bin", "sub/deeper/empty"] {
        let (x, y) = (std::fs::read(a.join(rel)), std::fs::read(b.join(rel)));
        assert!(
            x.is_ok() && x.ok() == y.ok(),
            "{rel} differs between {a:?} and {b:?}"
        );
    }
}

#[test]
fn the_daemon_serves_the_workspace_reports_every_period_and_comes_back_when_killed() {
    let dir = pod_dir("rsync-daemon");
    let listener = UnixListener::bind(dir.join("ctrl.sock")).unwrap();
    let port = free_port();
    std::fs::create_dir_all(dir.join("ro")).unwrap();
    std::fs::create_dir_all(dir.join("ubin")).unwrap();
    let allow = format!(
        "ro:{}:false,bad entry,gone:/no/such/folder:true",
        dir.join("ro").display()
    );
    let mut agent = agent(
        &dir,
        &[
            "-enableRsync",
            &format!("-rsyncPort={port}"),
            "-rsyncReadLimit=1000",
            "-rsyncWriteLimit=2000",
            &format!("-rsyncPathAllowList={allow}"),
            &format!("-userBinPath={}", dir.join("ubin").display()),
        ],
        "sleep 60",
    );
    let (mut ctrl, hello) = TestCtrl::accept(&listener);
    assert_eq!(
        (hello.rsync_read_limit, hello.rsync_write_limit),
        (1000, 2000)
    );

    // Bad allow-list entries are named, once each, and cost only themselves.
    let ops = |needle: &'static str| {
        move |m: &Message| m.kind == MsgType::MessageOps && m.message_ops.contains(needle)
    };
    ctrl.wait_for(ops("\"bad entry\" refused: not name:path:writable"), LONG);
    ctrl.wait_for(
        ops("\"gone\" refused: /no/such/folder does not exist"),
        LONG,
    );

    let (first, running, task_port) = ctrl.next_status(LONG);
    assert!(running);
    assert_eq!(task_port, i64::from(port));
    let url = format!("rsync://127.0.0.1:{port}/");

    // Only the workspace and the listed module are served.
    let listing = rsync(&[&url]);
    ok(&listing);
    let names: Vec<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect();
    assert_eq!(names, ["osmo", "ro"]);

    // Push a tree into the workspace and pull it back.
    let (src, back) = (dir.join("src"), dir.join("back"));
    write_tree(&src);
    ok(&rsync(&[
        "-r",
        &format!("{}/", src.display()),
        &format!("{url}osmo/tree/"),
    ]));
    same_tree(&src, &dir.join("run/workspace/tree"));
    ok(&rsync(&[
        "-r",
        &format!("{url}osmo/tree/"),
        &format!("{}/", back.display()),
    ]));
    same_tree(&src, &back);

    // A read-only module refuses a push and stays empty.
    let refused = rsync(&["-r", &format!("{}/", src.display()), &format!("{url}ro/")]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("read only"),
        "{refused:?}"
    );
    assert_eq!(std::fs::read_dir(dir.join("ro")).unwrap().count(), 0);

    // The next report comes one period after the first.
    let (second, running, _) = ctrl.next_status(PERIOD * 2);
    assert!(running);
    let gap = second - first;
    assert!(
        gap > PERIOD - Duration::from_millis(500) && gap < PERIOD + Duration::from_secs(1),
        "{gap:?}"
    );

    // Killed, the daemon is reported down at once, then up again after its restart.
    let pid = daemon_pid(agent.id()).expect("the daemon is the agent's child");
    rustix::process::kill_process(Pid::from_raw(pid).unwrap(), Signal::KILL).unwrap();
    let (_, running, _) = ctrl.next_status(PERIOD);
    assert!(!running);
    let (_, running, _) = ctrl.next_status(PERIOD);
    assert!(running);
    let new_pid = daemon_pid(agent.id()).expect("a new daemon");
    assert_ne!(new_pid, pid);
    ok(&rsync(&[&url]));

    // The agent stops its daemon when it exits.
    rustix::process::kill_process(Pid::from_raw(agent.id() as i32).unwrap(), Signal::TERM).unwrap();
    assert!(wait_exit(&mut agent, LONG).is_some());
    assert!(gone(new_pid), "the daemon outlived the agent");
    let rest = ctrl.rest();
    assert!(
        rest.iter().any(|m| m.kind == MsgType::ExecFailed),
        "{rest:#?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_an_rsync_binary_the_agent_says_why_once_and_the_command_runs() {
    let dir = pod_dir("rsync-missing");
    let listener = UnixListener::bind(dir.join("ctrl.sock")).unwrap();
    // The command's tools, but no rsync.
    let empty = dir.join("bin-without-rsync");
    std::fs::create_dir_all(&empty).unwrap();
    std::os::unix::fs::symlink("/bin/sleep", empty.join("sleep")).unwrap();
    let mut agent = {
        let mut c = Command::new(dir.join("osmo_exec"));
        c.arg(format!("-socketPath={}", dir.join("ctrl.sock").display()))
            .arg("-unixTimeout=1")
            .arg(format!(
                "-historyFilePath={}",
                dir.join("history").display()
            ))
            .arg(format!("-runLocation={}", dir.join("run").display()))
            .arg(format!("-userBinPath={}", empty.display()))
            .arg("-enableRsync")
            .arg(format!("-rsyncPort={}", free_port()))
            .args([
                "-commands",
                "/bin/sh",
                "-args",
                "-c",
                "-args",
                "echo user-ran; sleep 6",
            ])
            .env("PATH", &empty)
            .env("SIDEWIRE_PASSTHROUGH", "0")
            .stdout(Stdio::null());
        c.spawn().expect("start osmo_exec")
    };
    let (mut ctrl, hello) = TestCtrl::accept(&listener);
    assert_eq!((hello.rsync_read_limit, hello.rsync_write_limit), (0, 0));
    assert_eq!(wait_exit(&mut agent, LONG), Some(0));
    let all = ctrl.rest();
    let why: Vec<&Message> = all
        .iter()
        .filter(|m| m.kind == MsgType::MessageOps && m.message_ops.contains("rsync"))
        .collect();
    assert_eq!(why.len(), 1, "{all:#?}");
    assert!(
        why[0].message_ops.contains("no executable rsync"),
        "{why:?}"
    );
    let statuses: Vec<bool> = all
        .iter()
        .filter(|m| m.kind == MsgType::UserRsyncStatus)
        .map(|m| m.rsync_running)
        .collect();
    assert!(
        statuses.len() >= 2 && statuses.iter().all(|r| !r),
        "{statuses:?}"
    );
    assert!(all.iter().any(|m| m.message_out == "user-ran"));
    assert!(all.iter().any(|m| m.kind == MsgType::ExecFinished));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn osmos_own_daemon_binary_is_started_with_its_own_flags() {
    let dir = pod_dir("rsync-upstream");
    let listener = UnixListener::bind(dir.join("ctrl.sock")).unwrap();
    let bin = dir.join("ubin");
    std::fs::create_dir_all(&bin).unwrap();
    let record = dir.join("argv");
    // Stands in for OSMO's daemon: it names its -pathAllowList flag, as that binary does.
    std::fs::write(
        bin.join("rsync"),
        format!(
            "#!/bin/sh\n# usage: rsync -port N -pathAllowList LIST ...\necho \"$$ $*\" > {}.tmp\nmv {0}.tmp {0}\nexec sleep 60\n",
            record.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(bin.join("rsync"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let port = free_port();
    let mut agent = agent(
        &dir,
        &[
            "-enableRsync",
            &format!("-rsyncPort={port}"),
            "-rsyncReadLimit=5",
            "-rsyncWriteLimit=6",
            "-rsyncPathAllowList=x:/y:true",
            &format!("-userBinPath={}", bin.display()),
        ],
        "sleep 2",
    );
    let (mut ctrl, _) = TestCtrl::accept(&listener);
    let (_, running, task_port) = ctrl.next_status(LONG);
    assert!(running && task_port == i64::from(port));
    assert_eq!(wait_exit(&mut agent, LONG), Some(0));
    let recorded = std::fs::read_to_string(&record).expect("the daemon ran");
    let (pid, argv) = recorded.trim_end().split_once(' ').unwrap();
    let run = dir.join("run");
    assert_eq!(
        argv,
        format!(
            "-port {port} -runLocation {} -readLimit 5 -writeLimit 6 -pathAllowList x:/y:true",
            run.display()
        )
    );
    assert!(gone(pid.parse().unwrap()), "the daemon outlived the agent");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn init_installs_rsync_for_the_user_from_the_image_or_path() {
    let dir = pod_dir("rsync-init");
    let (source, bin, empty) = (dir.join("src"), dir.join("bin"), dir.join("empty-bin"));
    for d in [&source, &empty] {
        std::fs::create_dir_all(d).unwrap();
    }
    let init = |path: &Path| -> Output {
        let data = dir.join("data");
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data).unwrap();
        Command::new(env!("CARGO_BIN_EXE_sidewire"))
            .arg("init")
            .arg(format!("--data_location={}", data.display()))
            .arg(format!("--login_location={}", dir.join("login").display()))
            .arg(format!("--user_bin_location={}", bin.display()))
            .arg(format!("--run_location={}", dir.join("run").display()))
            .arg("--enable_rsync")
            .env("SIDEWIRE_INIT_SOURCE", &source)
            .env("SIDEWIRE_INIT_BINARIES", dir.join("binaries"))
            .env("PATH", path)
            .output()
            .expect("init")
    };
    let installed = bin.join("rsync");
    let mode = |p: &PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;

    // None in the image and none on PATH: a clear error.
    let out = init(&empty);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("--enable_rsync: no rsync binary at") && text.contains("or on PATH"),
        "{text}"
    );

    // From PATH.
    let system = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v rsync"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let system = PathBuf::from(system.trim_end());
    let out = init(system.parent().unwrap());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(&system).unwrap()
    );
    assert_eq!(mode(&installed), 0o755);

    // The image's own comes first.
    std::fs::write(source.join("rsync"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(source.join("rsync"), std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(init(system.parent().unwrap()).status.code(), Some(0));
    assert_eq!(std::fs::read(&installed).unwrap(), b"#!/bin/sh\n");
    assert_eq!(mode(&installed), 0o755);
    let _ = std::fs::remove_dir_all(&dir);
}
