//! Exec sessions through ctrl, end to end: the service stand-in sends `exec`, the router
//! stand-in plays the remote user's terminal, and the sidewire agent passes a real pty
//! to ctrl (fdpass), which joins it to the router link.

mod common;
mod sessions {
    pub mod support;
}

use std::time::{Duration, Instant};

use common::fake_ctrl::cpu_seconds;
use common::router::LinkEnd;
use sessions::support::{check_size_and_split_resize, exec, expect, SessionPod, T};

#[test]
fn a_shell_gets_its_size_resizes_ctrl_c_and_exit() {
    let pod = SessionPod::start("exec-shell", "sleep 60", &[]);
    let link = exec(&pod, "ex1", "sh");
    check_size_and_split_resize(&link);
    // Then a broken escape, dropped and logged.
    link.send_binary(b"\0RESIZE:{\"Rows\": x}echo still-h''ere\n");
    expect(&link, "still-here");
    assert!(pod.wait_line("bad resize escape"), "{:?}", pod.ctrl_lines());
    // Ctrl-C reaches the foreground job.
    link.send_binary(b"sleep 100\n");
    std::thread::sleep(Duration::from_millis(300));
    link.send_binary(b"\x03");
    link.send_binary(b"echo aft''er-$?\n");
    expect(&link, "after-130");
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
}

#[test]
fn printing_100_mb_costs_the_agent_nothing_and_sessions_run_side_by_side() {
    let mut pod = SessionPod::start("exec-print", "sleep 60", &[]);
    let agent = pod.pod.agent.as_ref().unwrap().id();
    let busy = exec(&pod, "ex2", "sh");
    let other = exec(&pod, "ex3", "sh");
    busy.send_binary(br#"{"Rows": 24, "Cols": 80}"#);
    other.send_binary(br#"{"Rows": 24, "Cols": 80}"#);
    busy.send_binary(b"echo rea''dy\n");
    expect(&busy, "ready");
    let before = cpu_seconds(agent);
    // (The marker is spelt apart so the echo of the command line does not match.)
    busy.send_binary(b"head -c 100000000 /dev/zero | tr '\\0' x; echo; echo DO''NE\n");
    let started = Instant::now();
    let mut seen = 0usize;
    let mut tail = Vec::new();
    while started.elapsed() < Duration::from_secs(60) {
        let chunk = busy.recv_binary(T);
        seen += chunk.len();
        tail.extend_from_slice(&chunk);
        if tail.len() > 64 {
            tail.drain(..tail.len() - 64);
        }
        if String::from_utf8_lossy(&tail).contains("DONE") {
            break;
        }
    }
    assert!(seen >= 100_000_000, "{seen} bytes");
    let spent = cpu_seconds(agent) - before;
    assert!(
        spent < 0.05,
        "the agent spent {spent} s of CPU on a session it passed on"
    );
    // The other session was never held up.
    other.send_binary(b"echo other-o''k\n");
    expect(&other, "other-ok");
    assert!(pod.both_alive());
}

#[test]
fn bad_commands_and_a_router_that_drops_or_refuses_end_one_session_each() {
    let mut pod = SessionPod::start("exec-bad", "sleep 60", &[]);
    // An empty command: the reason in the stream, then a close.
    let link = exec(&pod, "ex4", "   ");
    link.send_binary(br#"{"Rows": 24, "Cols": 80}"#);
    let text = String::from_utf8_lossy(&link.read_until(T, |b| b.ends_with(b"\r\n"))).into_owned();
    assert!(text.contains("empty"), "{text:?}");
    assert!(matches!(
        link.wait_end(T),
        Some(LinkEnd::Closed { code: 1011, .. })
    ));
    assert!(
        pod.wait_line("exec session failed"),
        "{:?}",
        pod.ctrl_lines()
    );
    // The router drops the link mid-session: the shell is hung up.
    let link = exec(&pod, "ex5", "sh");
    link.send_binary(br#"{"Rows": 24, "Cols": 80}"#);
    let pid_file = pod.pod.dir.join("shell.pid");
    link.send_binary(format!("echo $$ > {}; echo u''p\n", pid_file.display()).as_bytes());
    expect(&link, "up");
    link.cut();
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + T;
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the shell outlived its link"
    );
    // The router refuses the link: five tries, then a log line.
    pod.router.refuse_key("ex6", 403);
    pod.action("exec", "ex6", r#""entry_command": "sh""#);
    assert!(pod
        .router
        .wait_for_dials_of("ex6", 5, Duration::from_secs(15)));
    assert!(
        pod.wait_line("cannot reach the router"),
        "{:?}",
        pod.ctrl_lines()
    );
    // ctrl and the agent are up and the next session works.
    let link = exec(&pod, "ex7", "sh");
    link.send_binary(br#"{"Rows": 24, "Cols": 80}"#);
    link.send_binary(b"echo next-o''k\n");
    expect(&link, "next-ok");
    assert!(pod.both_alive());
}

#[test]
fn a_shell_runs_on_while_the_command_restarts() {
    let script = "if [ -e ran ]; then echo second; sleep 60; fi; touch ran; echo first; sleep 60";
    let pod = SessionPod::start("exec-restart", script, &[]);
    let link = exec(&pod, "ex8", "sh");
    link.send_binary(br#"{"Rows": 24, "Cols": 80}"#);
    link.send_binary(b"echo bef''ore\n");
    expect(&link, "before");
    pod.service.send_action(r#"{"action": "restart"}"#);
    assert!(pod.service.wait_for(
        |m| common::pod::texts_of(m, "STDOUT").contains(&"second".to_owned()),
        T
    ));
    link.send_binary(b"echo after-rest''art\n");
    expect(&link, "after-restart");
}

#[test]
fn a_shell_ends_with_a_close_frame_and_a_log_line_when_the_agent_goes_away() {
    let mut pod = SessionPod::start("exec-agent-gone", "sleep 60", &[]);
    let link = exec(&pod, "ex9", "sh");
    link.send_binary(br#"{"Rows": 24, "Cols": 80}"#);
    link.send_binary(b"echo he''re\n");
    expect(&link, "here");
    let mut agent = pod.pod.agent.take().unwrap();
    agent.kill().unwrap();
    agent.wait().unwrap();
    match link.wait_end(T) {
        Some(LinkEnd::Closed { code: 1011, reason }) => {
            assert!(reason.contains("agent went away"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        pod.wait_line("the agent went away"),
        "{:?}",
        pod.ctrl_lines()
    );
}

#[test]
fn sessions_past_the_limit_are_refused_with_a_reason() {
    let pod = SessionPod::start("exec-limit", "sleep 60", &["-maxSessions", "1"]);
    let first = exec(&pod, "ex10", "sh");
    first.send_binary(br#"{"Rows": 24, "Cols": 80}"#);
    first.send_binary(b"echo fir''st\n");
    expect(&first, "first");
    pod.action("exec", "ex11", r#""entry_command": "sh""#);
    assert!(pod.router.wait_for_dials_of("ex11", 1, T));
    assert!(
        pod.wait_line("Refused a new exec session: too many sessions"),
        "{:?}",
        pod.ctrl_lines()
    );
    // The open session is not disturbed.
    first.send_binary(b"echo sti''ll\n");
    expect(&first, "still");
}

#[test]
fn an_exec_that_comes_before_the_agent_waits_for_it() {
    // The agent starts a second after ctrl, so the action reaches ctrl first.
    let pod = SessionPod::with_agent("exec-early", &[], |dir| {
        let agent = format!("{}", dir.join("osmo_exec").display());
        let args = common::pod::Pod::agent_args(dir, "sleep 60");
        std::process::Command::new("sh")
            .arg("-c")
            .arg(r#"sleep 1; exec "$0" "$@""#)
            .arg(agent)
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    });
    let link = exec(&pod, "ex12", "sh");
    link.send_binary(br#"{"Rows": 24, "Cols": 80}"#);
    link.send_binary(b"echo wai''ted\n");
    expect(&link, "waited");
}

/// `-execTimeout` (minutes) bounds the wait for an agent: with none ever connecting, the
/// user's shell ends after a minute with a reason and a log line, and ctrl stays up.
#[test]
fn an_exec_with_no_agent_ends_after_exec_timeout_with_a_reason() {
    let mut pod = SessionPod::with_agent("exec-timeout", &["-execTimeout", "1"], |_| {
        // Stands in for an agent that never connects.
        std::process::Command::new("sleep")
            .arg("600")
            .spawn()
            .unwrap()
    });
    let started = Instant::now();
    let link = exec(&pod, "ex13", "sh");
    link.send_binary(br#"{"Rows": 24, "Cols": 80}"#);
    match link.wait_end(Duration::from_secs(90)) {
        Some(LinkEnd::Closed { code: 1011, reason }) => {
            assert!(
                reason.contains("did not connect within 1 minutes"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(59), "{waited:?}");
    assert!(
        pod.wait_line("did not connect within 1 minutes"),
        "{:?}",
        pod.ctrl_lines()
    );
    assert!(pod.both_alive(), "ctrl exited");
}
