//! ctrl's sessions with an upstream-style agent: tests/sessions/upstream_agent.py speaks
//! to ctrl as upstream's osmo_exec does (no greeting, so no fdpass and no dial; an exec
//! session relayed over a second connection to the socket, the agent reading the size and
//! the resize escapes itself). The service stand-in sends the actions, the router
//! stand-in plays the remote user. (The sidewire agent with an upstream-style ctrl is in
//! tests/agent_sessions.rs.)

mod common;
mod sessions {
    pub mod support;
}

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::fake_ctrl::foreground_process;
use common::pod::texts_of;
use common::router::{Connect, Kind, LinkEnd};
use sessions::support::{
    check_size_and_split_resize, echo_concurrently, echo_server, exec, expect, SessionPod, T,
};

/// Starts the upstream-style agent on the pod's socket, running `sh -c script`; its log
/// goes to `agent.log` in the pod's folder.
fn upstream_agent(dir: &Path, script: &str) -> Child {
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sessions/upstream_agent.py");
    let log = std::fs::File::create(dir.join("agent.log")).expect("agent log");
    Command::new("python3")
        .arg(program)
        .arg(dir.join("ctrl.sock"))
        .arg(dir.join("history"))
        .args(["sh", "-c", script])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("python3 runs the upstream-style agent")
}

fn stdout_has(pod: &SessionPod, line: &str) -> bool {
    pod.service
        .wait_for(|m| texts_of(m, "STDOUT").iter().any(|l| l == line), T)
}

#[test]
fn a_shell_through_an_upstream_agent_gets_its_size_resizes_input_output_ctrl_c_and_exit() {
    // The command says which run it is, so a restart shows.
    let script =
        "if [ -e ran ]; then echo second-run; sleep 60; fi; touch ran; echo first-run; sleep 60";
    let mut pod = SessionPod::with_agent("compat-exec", &[], |dir| upstream_agent(dir, script));
    // The agent speaks upstream's protocol: ctrl started its command and logs its lines.
    assert!(stdout_has(&pod, "first-run"));
    let link = exec(&pod, "ux1", "sh");
    // Keystrokes right behind the size: upstream's agent would lose them if they reached
    // it in the read that holds the size, so ctrl holds them until the shell speaks.
    check_size_and_split_resize(&link);
    // Output comes back (the marker spelt apart so the echoed command line differs).
    link.send_binary(b"echo out''put-$((6*7))\n");
    expect(&link, "output-42");
    // Ctrl-C reaches the foreground job (a sleep no other test starts).
    link.send_binary(b"sleep 4244\n");
    let deadline = Instant::now() + T;
    while foreground_process(&["sleep", "4244"]).is_none() {
        assert!(
            Instant::now() < deadline,
            "sleep never ran in the foreground"
        );
        thread::sleep(Duration::from_millis(10));
    }
    link.send_binary(b"\x03");
    link.send_binary(b"echo status=$?\n");
    expect(&link, "status=130");
    // The shell goes on while the command restarts (UserStop, then UserStart).
    pod.service.send_action(r#"{"action": "restart"}"#);
    assert!(stdout_has(&pod, "second-run"));
    link.send_binary(b"echo after-rest''art\n");
    expect(&link, "after-restart");
    link.send_binary(b"exit\n");
    match link.wait_end(T) {
        Some(LinkEnd::Closed { code: 1000, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(
        pod.router.violations().is_empty(),
        "{:?}",
        pod.router.violations()
    );
    // The next session works too.
    let link = exec(&pod, "ux2", "sh");
    link.send_binary(br#"{"Rows": 24, "Cols": 80}"#);
    link.send_binary(b"echo next-o''k\n");
    expect(&link, "next-ok");
    assert!(pod.both_alive());
}

#[test]
fn a_command_that_prints_nothing_before_reading_still_gets_its_input() {
    let pod = SessionPod::with_agent("compat-silent", &[], |dir| {
        upstream_agent(dir, "echo star''ted; sleep 60")
    });
    // (Sessions need the agent connected.)
    assert!(stdout_has(&pod, "started"));
    // `cat` prints nothing before it reads: input held back for the command's first
    // output must not wait for it for ever.
    let link = exec(&pod, "ux3", "cat");
    link.send_binary(br#"{"Rows": 24, "Cols": 80}"#);
    link.send_binary(b"hello-cat\n");
    expect(&link, "hello-cat");
}

#[test]
fn a_tcp_forward_through_an_upstream_agent_echoes_and_a_closed_port_is_not_asked_of_it() {
    let echo = echo_server();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut pod = SessionPod::with_agent("compat-pf", &[], |dir| upstream_agent(dir, "sleep 60"));
    pod.action(
        "portforward",
        "upf1",
        &format!(r#""task_port": {}, "use_udp": false"#, echo.port()),
    );
    let control = pod.router.client(Kind::Portforward, "upf1", T);
    echo_concurrently(&pod.router, &control, 4, 400_000);
    // The agent cannot dial (it never said so): ctrl gives up after its own tries, with
    // a reason, rather than waiting for an answer that never comes.
    pod.action(
        "portforward",
        "upf2",
        &format!(r#""task_port": {closed_port}"#),
    );
    let control = pod.router.client(Kind::Portforward, "upf2", T);
    let link = pod
        .router
        .open_connection(&control, &Connect::Tcp, T)
        .unwrap();
    match link.wait_end(Duration::from_secs(15)) {
        Some(LinkEnd::Closed { code: 1011, reason }) => {
            assert!(reason.contains(&closed_port.to_string()), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(pod.both_alive());
    assert!(
        pod.router.violations().is_empty(),
        "{:?}",
        pod.router.violations()
    );
}

/// Reads `conn` until `wanted` shows; everything read so far.
fn read_until(conn: &mut UnixStream, wanted: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(wanted) {
        match conn.read(&mut buf) {
            Ok(n) if n > 0 => seen.extend_from_slice(&buf[..n]),
            other => panic!(
                "{wanted:?} never came ({other:?}): {:?}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// The stand-in is faithful where it matters: bytes in the read that brings the size are
/// lost, as upstream's agent loses them. (So the test above, where nothing is lost,
/// shows ctrl's holding back, not a lenient agent.)
#[test]
fn the_upstream_style_agent_loses_input_that_comes_with_the_size() {
    let dir = common::pod::pod_dir("compat-loss");
    let listener = UnixListener::bind(dir.join("ctrl.sock")).unwrap();
    let mut agent = upstream_agent(&dir, "sleep 60");
    let mut control = common::fake_ctrl::accept(&listener, T);
    control
        .write_all(b"{\"Type\":\"ExecStart\",\"OutputFolder\":\"/tmp\"}\n")
        .unwrap();
    control
        .write_all(b"{\"Type\":\"UserExecStart\",\"Command\":\"sh\"}\n")
        .unwrap();
    let mut conn = common::fake_ctrl::accept(&listener, T);
    conn.write_all(b"{\"Rows\": 30, \"Cols\": 90}echo lo''st\n")
        .unwrap();
    // The shell's prompt, then input that comes on its own.
    read_until(&mut conn, "$ ");
    conn.write_all(b"stty size; echo ke''pt\n").unwrap();
    let screen = read_until(&mut conn, "kept");
    assert!(screen.contains("30 90"), "{screen:?}");
    assert!(!screen.contains("lost"), "{screen:?}");
    let _ = agent.kill();
    let _ = agent.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
