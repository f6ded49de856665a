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
    // A long flush period: at the kill, ctrl holds lines the service has not seen (and
    // the agent has written them, so only acknowledgements can bring them back).
    let flags = ["-logsPeriod", "1000"];
    let ctrl = Pod::start_ctrl(&dir, &cfg, service.port(), &flags);
    let mut pod = Pod {
        dir: dir.clone(),
        ctrl,
        agent: Some(start_agent(&dir, script)),
    };
    assert!(
        service.wait_for(|m| texts_of(m, "STDOUT").len() >= 3000, LONG),
        "lines flow before the kill"
    );
    std::thread::sleep(Duration::from_millis(300));
    kill(&mut pod.ctrl);
    let at_kill = numbers(&service).len();
    // Lines pile up in the agent while no ctrl listens.
    std::thread::sleep(Duration::from_millis(500));
    pod.ctrl = Pod::start_ctrl(&dir, &cfg, service.port(), &flags);

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

/// One upstream-style message line (all nine fields, zero values).
fn upstream_line(kind: &str, out: &str) -> String {
    format!(
        "{{\"Type\":\"{kind}\",\"MessageOut\":\"{out}\",\"MessageErr\":\"\",\"MessageOps\":\"\",\
         \"OutputFolder\":\"\",\"RouterAddress\":\"\",\"Command\":\"\",\"TaskPort\":0,\
         \"RsyncRunning\":false}}\n"
    )
}

#[test]
fn with_an_upstream_ctrl_a_lost_connection_is_not_redialled_and_the_command_finishes() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixListener;

    let dir = pod_dir("upstream-ctrl");
    let listener = UnixListener::bind(dir.join("ctrl.sock")).expect("listen");
    let mut agent = start_agent(&dir, "echo run >> marker; seq 1 100; sleep 1; exit 5");
    let (conn, _) = listener.accept().expect("the agent dials");
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.contains("\"SidewireHello\""), "{line}");
    // An upstream ctrl ignores the greeting: no answer, just ExecStart.
    (&conn)
        .write_all(upstream_line("ExecStart", "").as_bytes())
        .unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert!(line.contains("\"MessageOut\":\"1\""), "{line}");
    drop(reader);
    drop(conn);

    listener.set_nonblocking(true).unwrap();
    let code = wait_exit(&mut agent, LONG);
    assert!(
        listener.accept().is_err(),
        "the agent must not re-dial a ctrl that did not answer its greeting"
    );
    assert_eq!(code, Some(5), "the command still runs to its end");
    assert_eq!(
        std::fs::read_to_string(dir.join("marker")).unwrap(),
        "run\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_upstream_agent_gets_exec_start_and_never_a_sidewire_message() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixStream;

    let cfg = ServiceConfig::default();
    let service = OsmoService::start(cfg.clone());
    let dir = pod_dir("upstream-agent");
    let mut pod = Pod {
        dir: dir.clone(),
        ctrl: Pod::start_ctrl(&dir, &cfg, service.port(), &[]),
        agent: None,
    };
    let conn = (0..500)
        .find_map(|_| {
            UnixStream::connect(dir.join("ctrl.sock")).ok().or_else(|| {
                std::thread::sleep(Duration::from_millis(10));
                None
            })
        })
        .expect("ctrl listens");
    let connected = std::time::Instant::now();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.contains("\"Type\":\"ExecStart\""), "{line}");
    assert!(
        connected.elapsed() < Duration::from_secs(3),
        "ExecStart comes soon after the wait for a greeting ({:?})",
        connected.elapsed()
    );
    for text in ["one", "two"] {
        (&conn)
            .write_all(upstream_line("MessageOut", text).as_bytes())
            .unwrap();
    }
    (&conn)
        .write_all(upstream_line("ExecFinished", "").as_bytes())
        .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    assert!(!rest.contains("Sidewire"), "{rest}");
    assert_eq!(wait_exit(&mut pod.ctrl, LONG), Some(0));
    assert_eq!(texts_of(&service.messages(), "STDOUT"), ["one", "two"]);
}

#[test]
fn ctrl_killed_twenty_times_while_the_command_runs_loses_no_line_and_runs_it_once() {
    let cfg = ServiceConfig::default();
    let service = OsmoService::start(cfg.clone());
    let dir = pod_dir("restart-twenty");
    // 60,000 numbered lines over about 10 s.
    let script = "echo run >> marker; i=0; while [ $i -lt 60000 ]; do i=$((i+1)); echo $i; \
                  if [ $((i % 100)) -eq 0 ]; then sleep 0.015; fi; done; exit 6";
    let flags = ["-logsPeriod", "200"];
    let ctrl = Pod::start_ctrl(&dir, &cfg, service.port(), &flags);
    let mut pod = Pod {
        dir: dir.clone(),
        ctrl,
        agent: Some(start_agent(&dir, script)),
    };
    assert!(
        service.wait_for(|m| texts_of(m, "STDOUT").len() >= 100, LONG),
        "lines flow before the first kill"
    );
    let mut seed = std::process::id() as u64 * 2_654_435_761 + 1;
    for round in 0..20 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(150 + seed % 250));
        let agent = pod.agent.as_mut().expect("agent");
        assert!(
            agent.try_wait().unwrap().is_none(),
            "the command ended before kill {round}"
        );
        kill(&mut pod.ctrl);
        pod.ctrl = Pod::start_ctrl(&dir, &cfg, service.port(), &flags);
    }
    let mut agent = pod.agent.take().expect("agent");
    assert_eq!(wait_exit(&mut agent, LONG), Some(6));
    assert_eq!(wait_exit(&mut pod.ctrl, LONG), Some(0));
    assert_eq!(
        std::fs::read_to_string(dir.join("marker")).unwrap(),
        "run\n",
        "the command ran once"
    );
    let duplicates = assert_all_in_order(&numbers(&service), 60_000);
    eprintln!("20 kills, {duplicates} lines sent twice");
    assert_eq!(service.violations(), Vec::<String>::new());
}

#[test]
fn a_failed_commands_exit_code_is_journaled_and_kept_by_a_restarted_ctrl() {
    use sidewire::data::journal::{CommandState, Journal};

    for (script, code) in [("exit 3", 3), ("kill -TERM $$", 143)] {
        let cfg = ServiceConfig::default();
        let service = OsmoService::start(cfg.clone());
        let dir = pod_dir(&format!("exit-code-{code}"));
        let journal = dir.join("journal/journal.db");
        let flags = ["-journal", journal.to_str().unwrap()];
        let mut pod = Pod {
            dir: dir.clone(),
            ctrl: Pod::start_ctrl(&dir, &cfg, service.port(), &flags),
            agent: Some(start_agent(&dir, script)),
        };
        let recorded = || Journal::open(&journal).unwrap().command_state().unwrap();
        assert_eq!(wait_exit(&mut pod.ctrl, LONG), Some(0), "{script}");
        assert_eq!(
            recorded(),
            CommandState::Finished { exit_code: code },
            "{script}"
        );
        // A ctrl started again finds the command's end in the journal and keeps its code.
        pod.ctrl = Pod::start_ctrl(&dir, &cfg, service.port(), &flags);
        assert_eq!(wait_exit(&mut pod.ctrl, LONG), Some(0), "{script}");
        assert_eq!(
            recorded(),
            CommandState::Finished { exit_code: code },
            "{script} after a restart"
        );
    }
}

#[test]
fn an_agent_whose_stdout_and_stderr_nobody_reads_survives_three_ctrl_restarts() {
    use std::process::{Command, Stdio};

    let cfg = ServiceConfig::default();
    let service = OsmoService::start(cfg.clone());
    let dir = pod_dir("restart-unread");
    // More than a pipe holds on stderr at once, then 30,000 numbered lines over about 5 s.
    let script = "echo run >> marker; seq 1 20000 >&2; i=0; while [ $i -lt 30000 ]; do \
                  i=$((i+1)); echo $i; if [ $((i % 100)) -eq 0 ]; then sleep 0.015; fi; \
                  done; exit 6";
    let flags = ["-logsPeriod", "200"];
    let ctrl = Pod::start_ctrl(&dir, &cfg, service.port(), &flags);
    // Both pipes stay open and unread for the agent's whole life: its pass-through copy
    // and its own diagnostics (the re-dial notes) meet full pipes.
    let agent = Command::new(dir.join("osmo_exec"))
        .args(Pod::agent_args(&dir, script))
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start osmo_exec");
    let mut pod = Pod {
        dir: dir.clone(),
        ctrl,
        agent: Some(agent),
    };
    assert!(
        service.wait_for(|m| texts_of(m, "STDOUT").len() >= 100, LONG),
        "lines flow before the first kill"
    );
    for round in 0..3 {
        std::thread::sleep(Duration::from_millis(800));
        let agent = pod.agent.as_mut().expect("agent");
        assert_eq!(
            agent.try_wait().unwrap(),
            None,
            "the agent is alive before kill {round}"
        );
        kill(&mut pod.ctrl);
        // Lines pile up in the agent while no ctrl listens.
        std::thread::sleep(Duration::from_millis(200));
        pod.ctrl = Pod::start_ctrl(&dir, &cfg, service.port(), &flags);
    }
    let mut agent = pod.agent.take().expect("agent");
    assert_eq!(wait_exit(&mut agent, LONG), Some(6), "the command's code");
    assert_eq!(wait_exit(&mut pod.ctrl, LONG), Some(0));
    assert_eq!(
        std::fs::read_to_string(dir.join("marker")).unwrap(),
        "run\n",
        "the command ran once"
    );
    assert_all_in_order(&numbers(&service), 30_000);
    let stderr: Vec<u64> = texts_of(&service.messages(), "STDERR")
        .iter()
        .filter_map(|t| t.parse().ok())
        .collect();
    assert_all_in_order(&stderr, 20_000);
    assert_eq!(service.violations(), Vec::<String>::new());
}
