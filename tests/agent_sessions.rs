//! Exec sessions and agent-side dials of the real agent, against a ctrl played by the
//! test on the Unix socket: real ptys (the master passed with SCM_RIGHTS), real shells,
//! real TCP sockets.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use common::fake_ctrl::{cpu_seconds, foreground_process, proc_stat, zombie_children, FakeCtrl};
use sidewire::proto::ipc::{Message, MsgType};

const FEATURES: &[&str] = &["ack", "fdpass", "dial"];
const WAIT: Duration = Duration::from_secs(20);

fn exec_start(session: u64, command: &str) -> Message {
    let mut m = Message::new(MsgType::UserExecStart);
    m.session = session;
    m.command = command.into();
    m
}

/// Opens an exec session and returns its pty master (blocking reads on a clone).
fn open_pty(ctrl: &mut FakeCtrl, session: u64, command: &str) -> std::fs::File {
    ctrl.send(&exec_start(session, command));
    let (m, mut fds) = ctrl.read_session_message();
    assert_eq!(
        (m.kind.clone(), m.session, fds.len()),
        (MsgType::Pty, session, 1),
        "{m:?}"
    );
    std::fs::File::from(fds.remove(0))
}

/// Reads the master until `wanted` appears in what it printed (after `from`).
struct Screen {
    master: std::fs::File,
    text: Vec<u8>,
}

impl Screen {
    fn new(master: std::fs::File) -> Screen {
        sidewire::sys::fd::set_nonblocking(&master).expect("nonblocking master");
        Screen {
            master,
            text: Vec::new(),
        }
    }

    fn type_in(&mut self, keys: &str) {
        self.master
            .write_all(keys.as_bytes())
            .expect("write the master");
    }

    /// Reads until `wanted` shows, returning everything up to it (consumed).
    fn wait_for(&mut self, wanted: &str) -> String {
        let deadline = Instant::now() + WAIT;
        let mut buf = [0u8; 65536];
        loop {
            if let Some(at) = find(&self.text, wanted.as_bytes()) {
                let seen: Vec<u8> = self.text.drain(..at + wanted.len()).collect();
                return String::from_utf8_lossy(&seen).into_owned();
            }
            assert!(
                Instant::now() < deadline,
                "{wanted:?} never showed; the screen holds {:?}",
                String::from_utf8_lossy(&self.text)
            );
            match self.master.read(&mut buf) {
                Ok(0) => panic!("the pty ended before {wanted:?}"),
                Ok(n) => self.text.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Err(e) => panic!("reading the master: {e}"),
            }
        }
    }

    /// Reads until the master ends (EOF, or EIO once the terminal has no process).
    fn wait_end(&mut self) {
        let deadline = Instant::now() + WAIT;
        let mut buf = [0u8; 4096];
        loop {
            assert!(Instant::now() < deadline, "the pty never ended");
            match self.master.read(&mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Err(e) if e.raw_os_error() == Some(5) => return,
                Err(e) => panic!("reading the master: {e}"),
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn poll_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The process `sleep 100` started in session `sid`, once it is the terminal's
/// foreground job.
fn foreground_sleep(sid: u32) -> Option<u32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() != "sleep" {
            continue;
        }
        if let Some((_, _, session, tpgid)) = proc_stat(pid) {
            if session == sid && tpgid == pid as i64 {
                return Some(pid);
            }
        }
    }
    None
}

#[test]
fn an_exec_session_gets_a_real_terminal_and_its_shell_is_reaped() {
    let mut ctrl = FakeCtrl::start("exec-pty", Some(FEATURES));
    let mut screen = Screen::new(open_pty(&mut ctrl, 7, "bash --norc --noprofile"));
    let history = std::fs::metadata(ctrl.dir.join("history")).expect("the history file");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(history.permissions().mode() & 0o777, 0o644);

    // The size ctrl sets on the master is the size the shell's terminal has.
    sidewire::sys::pty::set_size(&screen.master, 33, 101).expect("TIOCSWINSZ");
    screen.type_in("stty size; echo pid=$$ term=$TERM hist=${HISTSIZE}x${HISTFILESIZE}\n");
    screen.wait_for("33 101\r\n");
    screen.wait_for("pid=");
    let line = screen.wait_for("x2000");
    let shell: u32 = line
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .expect("the shell's pid");
    assert!(line.contains("term=xterm hist=1000x2000"), "{line}");
    // The shell leads its own session, the pty its controlling terminal.
    assert_eq!(proc_stat(shell).map(|s| s.2), Some(shell));

    // Ctrl-C reaches the foreground job, and the prompt comes back.
    screen.type_in("sleep 100\n");
    let mut sleeper = None;
    poll_until("sleep is the foreground job", || {
        sleeper = foreground_sleep(shell);
        sleeper.is_some()
    });
    let interrupted = Instant::now();
    screen.type_in("\x03");
    screen.type_in("echo status=$?\n");
    screen.wait_for("status=130");
    assert!(interrupted.elapsed() < Duration::from_secs(10));
    screen.type_in("echo ba''ck\n");
    screen.wait_for("back");

    // `exit` ends the terminal; the agent reaps the shell and leaves no zombie.
    screen.type_in("exit\n");
    screen.wait_end();
    poll_until("the shell is reaped", || proc_stat(shell).is_none());
    // HISTFILE reached the shell: its history was saved there.
    let saved = std::fs::read_to_string(ctrl.dir.join("history")).unwrap_or_default();
    assert!(saved.contains("sleep 100\n"), "{saved:?}");
    assert_eq!(zombie_children(ctrl.agent_pid()), Vec::<u32>::new());
    poll_until("the agent logs the shell's end", || {
        ctrl.log().contains("exec session 7: the shell ended (0)")
    });
    // The agent still runs and serves the next session.
    let mut again = Screen::new(open_pty(&mut ctrl, 8, "sh"));
    again.type_in("echo $((6*7))\n");
    again.wait_for("42");
    assert!(ctrl.agent.try_wait().unwrap().is_none());
}

#[test]
fn a_session_printing_100_mb_costs_the_agent_no_cpu() {
    let mut ctrl = FakeCtrl::start("exec-flat", Some(FEATURES));
    let mut screen = Screen::new(open_pty(&mut ctrl, 1, "sh"));
    screen.type_in("echo rea''dy\n");
    screen.wait_for("ready");
    let before = cpu_seconds(ctrl.agent_pid());
    // The marker is printed, not echoed, so it shows only once all 100 MB are through.
    screen.type_in("head -c 100000000 /dev/zero | tr '\\0' x; echo; echo EN''D\n");
    let mut total = 0usize;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut buf = vec![0u8; 1 << 16];
    let mut tail = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "the output never ended");
        match screen.master.read(&mut buf) {
            Ok(n) if n > 0 => {
                total += n;
                tail.extend_from_slice(&buf[..n]);
                if find(&tail, b"\nEND").is_some() {
                    break;
                }
                let keep = tail.len().saturating_sub(16);
                tail.drain(..keep);
            }
            Ok(_) => panic!("the pty ended"),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => panic!("reading the master: {e}"),
        }
    }
    let spent = cpu_seconds(ctrl.agent_pid()) - before;
    assert!(total >= 100_000_000, "{total}");
    assert!(spent < 0.05, "the agent spent {spent} s of CPU on 100 MB");
}

#[test]
fn a_bad_command_fails_its_session_only() {
    let mut ctrl = FakeCtrl::start("exec-bad", Some(FEATURES));
    for (session, command, why) in [
        (3, "", "the command is empty"),
        (4, "  # nothing", "the command is empty"),
        (5, "echo 'a", "unclosed quote"),
    ] {
        ctrl.send(&exec_start(session, command));
        let (m, fds) = ctrl.read_session_message();
        assert_eq!(
            (m.kind.clone(), m.session),
            (MsgType::SessionFailed, session)
        );
        assert!(fds.is_empty());
        assert!(m.message_err.contains(why), "{}", m.message_err);
    }
    // A program that does not exist: the session opens and says why on the terminal.
    let mut screen = Screen::new(open_pty(&mut ctrl, 6, "no-such-program-here --x"));
    screen.wait_for("cannot start \"no-such-program-here\"");
    screen.wait_end();
    // The next session works.
    let mut screen = Screen::new(open_pty(&mut ctrl, 9, "sh"));
    screen.type_in("echo fi''ne\n");
    screen.wait_for("fine");
    assert!(ctrl
        .log()
        .contains("session 3 failed: exec session: the command is empty"));
}

#[test]
fn without_fdpass_from_ctrl_a_session_request_is_refused() {
    let mut ctrl = FakeCtrl::start("exec-nofd", Some(&["ack"]));
    ctrl.send(&exec_start(2, "sh"));
    let (m, _) = ctrl.read_session_message();
    assert_eq!((m.kind, m.session), (MsgType::SessionFailed, 2));
    assert!(
        m.message_err.contains("fdpass was not negotiated"),
        "{}",
        m.message_err
    );
    let mut dial = Message::new(MsgType::Dial);
    dial.session = 3;
    dial.task_port = 1;
    ctrl.send(&dial);
    let (m, _) = ctrl.read_session_message();
    assert_eq!((m.kind, m.session), (MsgType::SessionFailed, 3));
    assert!(
        m.message_err.contains("dial was not negotiated"),
        "{}",
        m.message_err
    );
}

fn dial(ctrl: &mut FakeCtrl, session: u64, port: i64) -> (Message, Vec<OwnedFd>) {
    let mut m = Message::new(MsgType::Dial);
    m.session = session;
    m.task_port = port;
    ctrl.send(&m);
    ctrl.read_session_message()
}

#[test]
fn a_dialled_socket_is_passed_and_carries_100_mb_without_the_agent() {
    let mut ctrl = FakeCtrl::start("dial-ok", Some(FEATURES));
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().unwrap().port();
    let (m, mut fds) = dial(&mut ctrl, 11, port as i64);
    assert_eq!((m.kind, m.session, fds.len()), (MsgType::Socket, 11, 1));
    let mut passed = TcpStream::from(fds.remove(0));
    passed.set_nonblocking(false).expect("blocking");
    let (mut app, _) = listener.accept().expect("the agent's connection");
    assert_eq!(passed.peer_addr().unwrap(), app.local_addr().unwrap());

    passed.write_all(b"ping").unwrap();
    let mut four = [0u8; 4];
    app.read_exact(&mut four).unwrap();
    assert_eq!(&four, b"ping");

    let before = cpu_seconds(ctrl.agent_pid());
    let writer = std::thread::spawn(move || {
        let chunk = vec![7u8; 1 << 16];
        let mut left = 100_000_000usize;
        while left > 0 {
            let n = left.min(chunk.len());
            app.write_all(&chunk[..n]).unwrap();
            left -= n;
        }
    });
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    while got < 100_000_000 {
        let n = passed.read(&mut buf).expect("read the passed socket");
        assert!(n > 0, "ended after {got} bytes");
        got += n;
    }
    writer.join().unwrap();
    let spent = cpu_seconds(ctrl.agent_pid()) - before;
    assert!(spent < 0.05, "the agent spent {spent} s of CPU on 100 MB");
}

#[test]
fn a_dial_to_a_closed_port_fails_after_its_retries() {
    let mut ctrl = FakeCtrl::start("dial-closed", Some(FEATURES));
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("listen");
        l.local_addr().unwrap().port()
    };
    let (m, _) = dial(&mut ctrl, 12, 0);
    assert_eq!((m.kind, m.session), (MsgType::SessionFailed, 12));
    assert!(
        m.message_err.contains("not a TCP port"),
        "{}",
        m.message_err
    );

    let started = Instant::now();
    let (m, fds) = dial(&mut ctrl, 13, port as i64);
    let took = started.elapsed();
    assert_eq!(
        (m.kind, m.session, fds.len()),
        (MsgType::SessionFailed, 13, 0)
    );
    assert!(
        m.message_err
            .contains(&format!("cannot dial 127.0.0.1:{port}"))
            && m.message_err.contains("after 5 attempts")
            && m.message_err.contains("refused"),
        "{}",
        m.message_err
    );
    assert!(
        took >= Duration::from_secs(4),
        "retried 1 s apart: {took:?}"
    );
    assert!(took < Duration::from_secs(8), "{took:?}");
}

/// Reads a relayed session until `wanted` shows (or the connection ends first: panic).
fn read_until(conn: &mut std::os::unix::net::UnixStream, seen: &mut Vec<u8>, wanted: &str) {
    let mut buf = [0u8; 65536];
    while find(seen, wanted.as_bytes()).is_none() {
        let n = conn.read(&mut buf).unwrap_or_else(|e| {
            panic!(
                "{wanted:?} never came: {e}; got {:?}",
                String::from_utf8_lossy(seen)
            )
        });
        assert!(
            n > 0,
            "ended before {wanted:?}: {:?}",
            String::from_utf8_lossy(seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    let at = find(seen, wanted.as_bytes()).unwrap();
    seen.drain(..at + wanted.len());
}

fn read_to_end(conn: &mut std::os::unix::net::UnixStream) -> String {
    let mut all = Vec::new();
    conn.read_to_end(&mut all).expect("read to the end");
    String::from_utf8_lossy(&all).into_owned()
}

#[test]
fn with_an_upstream_ctrl_the_session_is_relayed_over_a_second_connection() {
    // No answer to the greeting: an upstream ctrl.
    let mut ctrl = FakeCtrl::start("exec-relay", None);
    ctrl.send(&exec_start(0, "sh"));
    let mut conn = common::fake_ctrl::accept(&ctrl.listener, WAIT);
    // Input that arrives with the size is not lost.
    conn.write_all(b"{\"Rows\": 40, \"Cols\": 120}stty size\n")
        .unwrap();
    let mut seen = Vec::new();
    read_until(&mut conn, &mut seen, "40 120\r\n");
    // A resize escape split across two writes, between keystrokes.
    conn.write_all(b"echo a\0RESIZE:{\"Rows\":").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    conn.write_all(b" 50, \"Cols\": 132}b; stty size\n")
        .unwrap();
    read_until(&mut conn, &mut seen, "ab\r\n");
    read_until(&mut conn, &mut seen, "50 132\r\n");
    // A broken escape is dropped; the session goes on.
    conn.write_all(b"\0RESIZE:{\"Rows\": \"x\"}echo st''ill\n")
        .unwrap();
    read_until(&mut conn, &mut seen, "still");
    // Ctrl-C reaches the foreground job (a sleep no other test starts).
    conn.write_all(b"sleep 4243\n").unwrap();
    poll_until("sleep is the foreground job", || {
        foreground_process(&["sleep", "4243"]).is_some()
    });
    conn.write_all(b"\x03").unwrap();
    conn.write_all(b"echo status=$?\n").unwrap();
    read_until(&mut conn, &mut seen, "status=130");
    conn.write_all(b"exit\n").unwrap();
    read_to_end(&mut conn);
    poll_until("the relayed shell is reaped", || {
        ctrl.log().contains("exec session 0: the shell ended (0)")
    });
    assert_eq!(zombie_children(ctrl.agent_pid()), Vec::<u32>::new());
    assert!(ctrl.log().contains("dropped a resize"), "{}", ctrl.log());

    // An empty command: the reason, "\r\n", and the end of the connection.
    ctrl.send(&exec_start(0, "   "));
    let mut conn = common::fake_ctrl::accept(&ctrl.listener, WAIT);
    let text = read_to_end(&mut conn);
    assert!(
        text.ends_with("the command is empty: \"   \"\r\n"),
        "{text:?}"
    );

    // A size that is not one: the reason in the stream, then the close.
    ctrl.send(&exec_start(0, "sh"));
    let mut conn = common::fake_ctrl::accept(&ctrl.listener, WAIT);
    conn.write_all(b"{\"Rows\": -1, \"Cols\": 80}ls\n").unwrap();
    let text = read_to_end(&mut conn);
    assert!(
        text.starts_with("sidewire: exec session: ") && text.ends_with("\r\n"),
        "{text:?}"
    );
    assert!(text.contains("Rows"), "{text:?}");

    // The next session works, and ctrl closing it hangs its shell up.
    ctrl.send(&exec_start(0, "sh"));
    let mut conn = common::fake_ctrl::accept(&ctrl.listener, WAIT);
    conn.write_all(b"{\"Rows\":5,\"Cols\":6}echo $((6*7))\n")
        .unwrap();
    read_until(&mut conn, &mut seen, "42");
    drop(conn);
    poll_until("the hung-up shell is reaped", || {
        ctrl.log()
            .matches("exec session 0: the shell ended")
            .count()
            == 2
    });
    assert!(ctrl.agent.try_wait().unwrap().is_none());
}

#[test]
fn a_shell_ending_is_never_taken_for_the_user_commands_end() {
    let mut ctrl = FakeCtrl::with_command("exec-vs-command", Some(FEATURES), "sleep 1; exit 3");
    ctrl.send(&Message::new(MsgType::ExecStart));
    // A session whose shell exits at once with another code, while the command runs.
    let mut screen = Screen::new(open_pty(&mut ctrl, 21, "sh -c 'exit 9'"));
    screen.wait_end();
    let (m, _) = ctrl.read_session_message();
    assert_eq!(m.kind, MsgType::ExecFailed, "{m:?}");
    assert!(m.message_err.contains("exit status 3"), "{}", m.message_err);
    poll_until("the agent logs the shell's own code", || {
        ctrl.log().contains("exec session 21: the shell ended (9)")
    });
}

#[test]
fn sessions_past_the_limit_are_refused_until_one_ends() {
    let limit = sidewire::agent::session::MAX_SESSIONS;
    let mut ctrl = FakeCtrl::start("exec-limit", Some(FEATURES));
    let mut masters: Vec<std::fs::File> = (1..=limit as u64)
        .map(|n| open_pty(&mut ctrl, n, "sh"))
        .collect();
    ctrl.send(&exec_start(1000, "sh"));
    let (m, fds) = ctrl.read_session_message();
    assert_eq!(
        (m.kind, m.session, fds.len()),
        (MsgType::SessionFailed, 1000, 0)
    );
    assert!(
        m.message_err.contains("too many sessions"),
        "{}",
        m.message_err
    );
    // Closing a master hangs its shell up; once it is reaped there is room again.
    drop(masters.pop());
    poll_until("the hung-up shell is reaped", || {
        ctrl.log()
            .contains(&format!("exec session {limit}: the shell ended"))
    });
    let mut screen = Screen::new(open_pty(&mut ctrl, 1001, "sh"));
    screen.type_in("echo o''k\n");
    screen.wait_for("ok");
}

#[test]
fn session_answers_go_between_whole_output_lines_while_the_command_floods_ctrl() {
    let mut ctrl = FakeCtrl::with_command("exec-interleave", Some(FEATURES), "seq 1 300000");
    ctrl.send(&Message::new(MsgType::ExecStart));
    let mut passed = Vec::new();
    let mut first_answer_at = None;
    let mut next_number = 1u64;
    loop {
        // Every line decodes (read_message panics otherwise) and carries its own fds.
        let (m, fds) = ctrl.read_message();
        match m.kind {
            MsgType::MessageOut => {
                assert_eq!(m.message_out, next_number.to_string());
                next_number += 1;
                // Ask while the output streams, so answers meet a busy outbox.
                if next_number == 20_000 {
                    for session in 1..=5 {
                        ctrl.send(&exec_start(session, "sh"));
                    }
                }
            }
            MsgType::Pty => {
                assert_eq!(fds.len(), 1);
                first_answer_at.get_or_insert(next_number);
                passed.push((
                    m.session,
                    std::fs::File::from(fds.into_iter().next().unwrap()),
                ));
            }
            MsgType::ExecFinished => break,
            _ => panic!("unexpected {m:?}"),
        }
    }
    assert_eq!(next_number, 300_001, "every output line came, in order");
    assert!(
        first_answer_at.is_some_and(|at| at < 300_000),
        "the answers came while the output streamed: {first_answer_at:?}"
    );
    let sessions: Vec<u64> = passed.iter().map(|(s, _)| *s).collect();
    assert_eq!(sessions, [1, 2, 3, 4, 5]);
    let (_, master) = passed.pop().unwrap();
    let mut screen = Screen::new(master);
    screen.type_in("echo fi''ve\n");
    screen.wait_for("five");
}
