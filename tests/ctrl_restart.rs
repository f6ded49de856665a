//! ctrl (the sidecar) killed with SIGKILL while the user command runs, then started again
//! with the same flags: the agent keeps the command running, keeps its lines, re-dials,
//! tells the new ctrl the command is running (or finished), and sends everything the old
//! ctrl had not made safe. The command runs once and no line is lost.

mod common;

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use common::pod::{pod_dir, texts_of, wait_exit, Pod};
use common::{OsmoService, ServiceConfig};

const LONG: Duration = Duration::from_secs(90);

/// The numbers in STDOUT lines, in arrival order.
fn numbers(service: &OsmoService) -> Vec<u64> {
    texts_of(&service.messages(), "STDOUT")
        .iter()
        .filter_map(|t| t.parse().ok())
        .collect()
}

/// Checks that 1..=n all arrived and first arrivals are in order; returns how many
/// lines came twice (acknowledgements make resending at-least-once).
fn assert_all_in_order(got: &[u64], n: u64) -> usize {
    let mut seen = vec![false; n as usize + 1];
    let mut firsts = Vec::new();
    for &k in got {
        assert!((1..=n).contains(&k), "unexpected line {k}");
        if !std::mem::replace(&mut seen[k as usize], true) {
            firsts.push(k);
        }
    }
    let missing: Vec<u64> = (1..=n).filter(|&k| !seen[k as usize]).take(10).collect();
    assert!(missing.is_empty(), "lines lost, first ones: {missing:?}");
    assert!(
        firsts.iter().zip(1..).all(|(&k, want)| k == want),
        "lines out of order"
    );
    got.len() - n as usize
}

/// Starts the agent and drains its pass-through copy so the pipe never fills.
fn start_agent(dir: &Path, script: &str) -> Child {
    let mut agent = Pod::start_agent(dir, script);
    let mut stdout = agent.stdout.take().expect("stdout");
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    agent
}

fn kill(ctrl: &mut Child) {
    ctrl.kill().expect("SIGKILL ctrl");
    ctrl.wait().expect("reap ctrl");
}

#[test]
fn ctrl_killed_mid_stream_and_restarted_loses_no_line_and_runs_the_command_once() {
    let cfg = ServiceConfig::default();
    let service = OsmoService::start(cfg.clone());
    let dir = pod_dir("restart-mid");
    // 20,000 numbered lines over about 3 s.
    let script = "echo run >> marker; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); echo $i; \
                  if [ $((i % 100)) -eq 0 ]; then sleep 0.015; fi; done; exit 3";
    let ctrl = Pod::start_ctrl(&dir, &cfg, service.port(), &[]);
    let mut pod = Pod {
        dir: dir.clone(),
        ctrl,
        agent: Some(start_agent(&dir, script)),
    };
    assert!(
        service.wait_for(|m| texts_of(m, "STDOUT").len() >= 3000, LONG),
        "lines flow before the kill"
    );
    kill(&mut pod.ctrl);
    let at_kill = numbers(&service).len();
    // Lines pile up in the agent while no ctrl listens.
    std::thread::sleep(Duration::from_millis(500));
    pod.ctrl = Pod::start_ctrl(&dir, &cfg, service.port(), &[]);

    let mut agent = pod.agent.take().expect("agent");
    assert_eq!(
        wait_exit(&mut agent, LONG),
        Some(3),
        "the agent exits with the command's code"
    );
    assert_eq!(
        wait_exit(&mut pod.ctrl, LONG),
        Some(0),
        "the new ctrl ends with 0 after LOG_DONE"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("marker")).unwrap(),
        "run\n",
        "the command ran once"
    );
    let got = numbers(&service);
    assert!(
        at_kill < 20_000,
        "the kill came mid-stream ({at_kill} lines)"
    );
    let duplicates = assert_all_in_order(&got, 20_000);
    eprintln!("{at_kill} lines before the kill, {duplicates} sent twice");
    let messages = service.messages();
    assert_eq!(service.violations(), Vec::<String>::new());
    assert_eq!(
        texts_of(&messages, "STDERR"),
        ["Command failed with error: exit status 3\n"]
    );
    assert!(
        texts_of(&messages, "OSMO_CTRL")
            .iter()
            .any(|t| t == "ctrl restarted; the command is still running"),
        "{:?}",
        texts_of(&messages, "OSMO_CTRL")
    );
    let last = messages.last().map(common::pod::io_type);
    assert_eq!(last.as_deref(), Some("LOG_DONE"));
}

#[test]
fn command_finishing_while_ctrl_is_away_is_reported_to_the_new_ctrl() {
    let cfg = ServiceConfig::default();
    let service = OsmoService::start(cfg.clone());
    let dir = pod_dir("restart-done");
    let script = "echo run >> marker; seq 1 2000; sleep 1; seq 2001 5000; exit 4";
    let ctrl = Pod::start_ctrl(&dir, &cfg, service.port(), &[]);
    let mut pod = Pod {
        dir: dir.clone(),
        ctrl,
        agent: Some(start_agent(&dir, script)),
    };
    assert!(service.wait_for(|m| !texts_of(m, "STDOUT").is_empty(), LONG));
    kill(&mut pod.ctrl);
    let mut agent = pod.agent.take().expect("agent");
    // The command ends while no ctrl listens; the agent waits for one.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(agent.try_wait().unwrap(), None, "the agent waits for ctrl");
    pod.ctrl = Pod::start_ctrl(&dir, &cfg, service.port(), &[]);

    assert_eq!(wait_exit(&mut agent, LONG), Some(4));
    assert_eq!(wait_exit(&mut pod.ctrl, LONG), Some(0));
    assert_eq!(
        std::fs::read_to_string(dir.join("marker")).unwrap(),
        "run\n"
    );
    assert_all_in_order(&numbers(&service), 5000);
    let messages = service.messages();
    assert_eq!(service.violations(), Vec::<String>::new());
    assert_eq!(
        texts_of(&messages, "STDERR"),
        ["Command failed with error: exit status 4\n"]
    );
    assert!(texts_of(&messages, "OSMO_CTRL")
        .iter()
        .any(|t| t == "ctrl restarted; the command ended with code 4"));
    let last = messages.last().map(common::pod::io_type);
    assert_eq!(last.as_deref(), Some("LOG_DONE"));
}
