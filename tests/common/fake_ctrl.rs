//! ctrl played by a test on the Unix socket: accepts the real agent, reads its lines
//! with the descriptors passed along (SCM_RIGHTS), answers its greeting with chosen
//! features and sends it session requests.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sidewire::proto::ipc::{AgentState, Hello, Message, MsgType};
use sidewire::sys::scm::recv_with_fds;

use super::pod::{pod_dir, Pod};

pub struct FakeCtrl {
    pub dir: PathBuf,
    pub listener: UnixListener,
    pub conn: UnixStream,
    pub agent: Child,
    pending: Vec<u8>,
    fds: Vec<OwnedFd>,
    /// The agent's stderr so far.
    pub log: Arc<Mutex<String>>,
}

pub fn accept(listener: &UnixListener, timeout: Duration) -> UnixStream {
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((conn, _)) => {
                conn.set_nonblocking(false).expect("blocking conn");
                conn.set_read_timeout(Some(Duration::from_secs(30)))
                    .expect("read timeout");
                return conn;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "the agent did not connect");
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

impl FakeCtrl {
    /// Starts the agent (as `osmo_exec`, never sent ExecStart) and takes its greeting;
    /// `answer` is the feature list ctrl answers with, or None for a ctrl that never
    /// answers (upstream's).
    pub fn start(name: &str, answer: Option<&[&str]>) -> FakeCtrl {
        FakeCtrl::with_command(name, answer, "true")
    }

    /// As [`FakeCtrl::start`], for an agent whose user command is `sh -c script` (sent
    /// ExecStart by the test when it wants).
    pub fn with_command(name: &str, answer: Option<&[&str]>, script: &str) -> FakeCtrl {
        let dir = pod_dir(name);
        let listener = UnixListener::bind(dir.join("ctrl.sock")).expect("bind ctrl.sock");
        let mut agent = Command::new(dir.join("osmo_exec"))
            .args(Pod::agent_args(&dir, script))
            .current_dir(&dir)
            .env("SIDEWIRE_PASSTHROUGH", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start osmo_exec");
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = agent.stderr.take().expect("stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let conn = accept(&listener, Duration::from_secs(20));
        let mut ctrl = FakeCtrl {
            dir,
            listener,
            conn,
            agent,
            pending: Vec::new(),
            fds: Vec::new(),
            log,
        };
        let (hello, _) = ctrl.read_message();
        assert_eq!(hello.kind, MsgType::Hello);
        let features = hello.hello.expect("Sidewire object").features;
        for f in ["ack", "fdpass", "dial"] {
            assert!(features.iter().any(|x| x == f), "{features:?}");
        }
        if let Some(answer) = answer {
            let mut m = Message::new(MsgType::Hello);
            m.hello = Some(Hello {
                version: 1,
                features: answer.iter().map(|f| f.to_string()).collect(),
                state: AgentState::Idle,
                seq: 0,
                rsync_read_limit: 0,
                rsync_write_limit: 0,
            });
            ctrl.send(&m);
        }
        ctrl
    }

    pub fn send(&mut self, m: &Message) {
        let mut line = Vec::new();
        m.encode(&mut line);
        self.conn.write_all(&line).expect("write to the agent");
    }

    /// The agent's next line and the descriptors it announced.
    pub fn read_message(&mut self) -> (Message, Vec<OwnedFd>) {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                let m = Message::decode(&line).expect("a message");
                let n = m.fds as usize;
                assert!(
                    self.fds.len() >= n,
                    "{n} descriptors announced, {} came",
                    self.fds.len()
                );
                let fds = self.fds.drain(..n).collect();
                return (m, fds);
            }
            let mut buf = [0u8; 65536];
            let n = recv_with_fds(&self.conn, &mut buf, &mut self.fds).expect("read the agent");
            assert!(n > 0, "the agent closed the connection");
            self.pending.extend_from_slice(&buf[..n]);
        }
    }

    /// The agent's next message that is not output (its output lines are skipped).
    pub fn read_session_message(&mut self) -> (Message, Vec<OwnedFd>) {
        loop {
            let (m, fds) = self.read_message();
            if !matches!(
                m.kind,
                MsgType::MessageOut | MsgType::MessageErr | MsgType::MessageOps
            ) {
                return (m, fds);
            }
        }
    }

    pub fn agent_pid(&self) -> u32 {
        self.agent.id()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for FakeCtrl {
    fn drop(&mut self) {
        let _ = self.agent.kill();
        let _ = self.agent.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A process's CPU time (user + system) in seconds, from /proc/PID/stat.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    // utime and stime are fields 14 and 15; `after` starts at field 3.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// `(state, ppid, session, tpgid)` of a process, None once it is gone (reaped).
pub fn proc_stat(pid: u32) -> Option<(char, u32, u32, i64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    Some((
        f[0].chars().next()?,
        f[1].parse().ok()?,
        f[3].parse().ok()?,
        f[5].parse().ok()?,
    ))
}

/// The children of `parent` that are zombies.
pub fn zombie_children(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Some(('Z', ppid, _, _)) = proc_stat(pid) {
            if ppid == parent {
                found.push(pid);
            }
        }
    }
    found
}

/// The process running `argv`, once it is its terminal's foreground job.
pub fn foreground_process(argv: &[&str]) -> Option<u32> {
    let wanted: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default() != wanted {
            continue;
        }
        if proc_stat(pid).is_some_and(|(_, _, _, tpgid)| tpgid == pid as i64) {
            return Some(pid);
        }
    }
    None
}
