//! The agent as a process of the user container: its own stdout and stderr (the container
//! log), what the command leaves behind, and the children it must reap as PID 1.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::pod::{pod_dir, texts_of, wait_exit, Pod};
use common::{OsmoService, ServiceConfig};

const LONG: Duration = Duration::from_secs(90);

#[test]
fn output_the_container_log_could_not_take_is_reported_to_the_byte_at_the_end() {
    let cfg = ServiceConfig::default();
    let service = OsmoService::start(cfg.clone());
    let dir = pod_dir("passthrough-drops");
    // About 2.7 MB on stdout: far more than a pipe and the pass-through budget hold.
    let lines = 400_000u64;
    let total: u64 = (1..=lines).map(|i| i.to_string().len() as u64 + 1).sum();
    let ctrl = Pod::start_ctrl(&dir, &cfg, service.port(), &[]);
    // stdout is read only after the agent exits; stderr is read all along.
    let mut agent = Command::new(dir.join("osmo_exec"))
        .args(Pod::agent_args(&dir, &format!("seq 1 {lines}")))
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start osmo_exec");
    let mut stderr = agent.stderr.take().expect("stderr");
    let diagnostics = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut pod = Pod {
        dir,
        ctrl,
        agent: Some(agent),
    };
    let agent = pod.agent.as_mut().expect("agent");
    assert_eq!(wait_exit(agent, LONG), Some(0));
    let mut passed = Vec::new();
    agent
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut passed)
        .expect("read stdout");
    let diagnostics = diagnostics.join().expect("stderr reader");

    let reports: Vec<&str> = diagnostics
        .lines()
        .filter(|l| l.contains("bytes of the command's output"))
        .collect();
    assert_eq!(reports.len(), 1, "{diagnostics}");
    let dropped: u64 = reports[0]
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .expect("a byte count");
    assert!(dropped > 0, "{diagnostics}");
    assert_eq!(
        passed.len() as u64 + dropped,
        total,
        "every byte either reached the container log or is counted"
    );
    assert_eq!(wait_exit(&mut pod.ctrl, LONG), Some(0));
    assert_eq!(service.violations(), Vec::<String>::new());
}

#[test]
fn an_agent_that_is_pid_1_reaps_the_orphans_of_its_command() {
    let cfg = ServiceConfig::default();
    let service = OsmoService::start(cfg.clone());
    let dir = pod_dir("pid1-zombies");
    // 50 double-forked children: each `sleep`'s parent exits at once, so the kernel hands
    // it to PID 1 (the agent), where it stays a zombie after it ends unless it is reaped.
    let script = "echo pid1=$(cat /proc/1/comm); for i in $(seq 50); do (sleep 0.3 &); done; \
                  sleep 2; echo zombies=$(cat /proc/[0-9]*/stat 2>/dev/null | grep -c ') Z ')";
    let ctrl = Pod::start_ctrl(&dir, &cfg, service.port(), &[]);
    // A new PID namespace with its own /proc: the agent is its PID 1, as in a container
    // (and dies with `unshare`, which takes the namespace with it).
    let agent = Command::new("unshare")
        .args(["--fork", "--pid", "--mount-proc", "--kill-child"])
        .arg(dir.join("osmo_exec"))
        .args(Pod::agent_args(&dir, script))
        .current_dir(&dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("unshare (util-linux) runs the agent");
    let mut pod = Pod {
        dir,
        ctrl,
        agent: Some(agent),
    };
    assert_eq!(wait_exit(pod.agent.as_mut().unwrap(), LONG), Some(0));
    assert_eq!(wait_exit(&mut pod.ctrl, LONG), Some(0));
    let stdout = texts_of(&service.messages(), "STDOUT");
    assert_eq!(stdout, ["pid1=osmo_exec", "zombies=0"]);
}

/// A command that writes faster than the agent can cut its output into lines, while ctrl is
/// away (so nothing pauses the reads): the agent must still get round to its other work.
/// Here that is a SIGTERM, which it must pass on to the command, and a ctrl coming back.
#[test]
fn a_command_that_never_stops_writing_does_not_starve_the_agent() {
    let cfg = ServiceConfig::default();
    let service = OsmoService::start(cfg.clone());
    let dir = pod_dir("busy-pipe");
    let ctrl = Pod::start_ctrl(&dir, &cfg, service.port(), &[]);
    // Short lines from several writers: each is a message for the agent to make.
    let script = "trap 'touch got-term; exit 7' TERM; for i in 1 2 3 4; do yes & done; wait";
    let mut command = Command::new(dir.join("osmo_exec"));
    command
        .args(Pod::agent_args(&dir, script))
        .current_dir(&dir)
        .env("SIDEWIRE_PASSTHROUGH", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut pod = Pod {
        dir: dir.clone(),
        ctrl,
        agent: Some(command.spawn().expect("start osmo_exec")),
    };
    assert!(
        service.wait_for(|m| texts_of(m, "STDOUT").len() >= 1000, LONG),
        "lines flow"
    );
    // ctrl goes away: the agent reads at full speed, keeping the newest lines.
    let _ = pod.ctrl.kill();
    let _ = pod.ctrl.wait();
    std::thread::sleep(Duration::from_millis(500));
    let agent = pod.agent.as_mut().expect("agent");
    let pid = rustix::process::Pid::from_raw(agent.id() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !dir.join("got-term").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent never passed SIGTERM on to the command"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // A ctrl that comes back gets the command's end.
    pod.ctrl = Pod::start_ctrl(&dir, &cfg, service.port(), &[]);
    let agent = pod.agent.as_mut().expect("agent");
    assert_eq!(wait_exit(agent, LONG), Some(7), "the command's code");
}
