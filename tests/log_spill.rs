//! Lines printed while the OSMO service is away: past `-logsBufferSize` they wait in the
//! journal (not dropped), go out first, in order, once the service is back, and LOG_DONE
//! follows them. Past `-logsSpillBytes` the oldest are dropped and counted; a ctrl killed
//! during the outage leaves its spilled lines to the next one.

mod common;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use common::pod::{pod_dir, texts_of, wait_exit, Pod};
use common::{OsmoService, ServiceConfig};
use sidewire::data::journal::Journal;

const LONG: Duration = Duration::from_secs(90);
const LINES: u64 = 20_000;
/// Prints one line, waits for the test's `go` file (the service is away by then), then
/// floods.
const SCRIPT: &str = "echo start; while [ ! -f go ]; do sleep 0.02; done; seq 1 20000; exit 0";

/// The numbers in STDOUT lines, in arrival order.
fn numbers(service: &OsmoService) -> Vec<u64> {
    texts_of(&service.messages(), "STDOUT")
        .iter()
        .filter_map(|t| t.parse().ok())
        .collect()
}

/// The counts in the service's overflow warnings.
fn dropped_counts(service: &OsmoService) -> Vec<u64> {
    texts_of(&service.messages(), "STDERR")
        .iter()
        .filter_map(|t| {
            t.strip_prefix("WARNING: Maximum logging rate exceeded, ")?
                .strip_suffix(" lines have been dropped!")?
                .parse()
                .ok()
        })
        .collect()
}

/// Checks that `from..=to` all arrived and first arrivals are in order (resending is
/// at-least-once); returns how many came twice.
fn assert_all_in_order(got: &[u64], from: u64, to: u64) -> usize {
    let mut seen = vec![false; to as usize + 1];
    let mut firsts = Vec::new();
    for &k in got {
        assert!((from..=to).contains(&k), "unexpected line {k}");
        if !std::mem::replace(&mut seen[k as usize], true) {
            firsts.push(k);
        }
    }
    let missing: Vec<u64> = (from..=to)
        .filter(|&k| !seen[k as usize])
        .take(10)
        .collect();
    assert!(missing.is_empty(), "lines lost, first ones: {missing:?}");
    assert!(
        firsts.iter().zip(from..).all(|(&k, want)| k == want),
        "lines out of order"
    );
    got.len() - firsts.len()
}

/// Starts the agent and drains its pass-through copy so the pipe never fills.
fn start_agent(dir: &Path) -> Child {
    let mut agent = Pod::start_agent(dir, SCRIPT);
    let mut stdout = agent.stdout.take().expect("stdout");
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    agent
}

fn spilled_rows(journal: &Path) -> usize {
    Journal::open(journal)
        .and_then(|j| j.spilled(usize::MAX))
        .map_or(0, |rows| rows.len())
}

/// A pod whose ctrl keeps at most 100 lines in memory and has a journal; the service
/// has seen the first line and is then taken away, and the flood starts.
fn pod_with_outage(
    name: &str,
    service: &OsmoService,
    extra: &[&str],
) -> (Pod, PathBuf, Vec<String>) {
    let dir = pod_dir(name);
    let journal = dir.join("journal").join("journal.db");
    let mut flags: Vec<String> = ["-logsBufferSize", "100", "-journal"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    flags.push(journal.display().to_string());
    flags.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    let pod = Pod {
        dir: dir.clone(),
        ctrl: Pod::start_ctrl(&dir, service.config(), service.port(), &refs),
        agent: Some(start_agent(&dir)),
    };
    assert!(
        service.wait_for(|m| texts_of(m, "STDOUT") == ["start"], LONG),
        "the first line arrives"
    );
    // Its pong reaches ctrl (or it would be sent again, and counted if dropped).
    std::thread::sleep(Duration::from_millis(300));
    service.set_down(true);
    // ctrl notices the cut at once; past its reconnect grace it stops holding lines back.
    std::thread::sleep(Duration::from_secs(1));
    std::fs::write(dir.join("go"), "").expect("go file");
    (pod, journal, flags)
}

/// LOG_DONE came once, after every line (ctrl's own status lines may follow it: the
/// reconnect is reported after LOG_DONE was queued).
fn assert_log_done_after_every_line(service: &OsmoService) {
    assert_eq!(service.violations(), Vec::<String>::new());
    let io: Vec<String> = service
        .messages()
        .iter()
        .map(common::pod::io_type)
        .collect();
    let log_done: Vec<usize> = (0..io.len()).filter(|&i| io[i] == "LOG_DONE").collect();
    assert_eq!(log_done.len(), 1, "one LOG_DONE");
    let last_line = io.iter().rposition(|t| t == "STDOUT" || t == "STDERR");
    assert!(last_line < Some(log_done[0]), "LOG_DONE follows every line");
}

#[test]
fn lines_printed_while_the_service_is_away_wait_in_the_journal_and_all_arrive_in_order() {
    let service = OsmoService::start(ServiceConfig::default());
    let (mut pod, journal, _) = pod_with_outage("spill-all", &service, &[]);
    let mut agent = pod.agent.take().expect("agent");
    // The agent ends once ctrl has every line safe: the journal counts.
    assert_eq!(wait_exit(&mut agent, LONG), Some(0));
    let spilled = spilled_rows(&journal);
    assert!(
        spilled >= LINES as usize - 100,
        "all but the last 100 lines wait in the journal ({spilled})"
    );
    assert_eq!(service.log_lines(), 1, "nothing got through the outage");
    service.set_down(false);

    assert_eq!(
        wait_exit(&mut pod.ctrl, LONG),
        Some(0),
        "ctrl ends after LOG_DONE"
    );
    let duplicates = assert_all_in_order(&numbers(&service), 1, LINES);
    eprintln!("{spilled} lines spilled, {duplicates} sent twice");
    assert_eq!(
        dropped_counts(&service),
        Vec::<u64>::new(),
        "no line dropped"
    );
    assert_log_done_after_every_line(&service);
    assert_eq!(
        spilled_rows(&journal),
        0,
        "delivered lines leave the journal"
    );
}

#[test]
fn past_the_spill_budget_the_oldest_lines_are_dropped_and_counted() {
    let service = OsmoService::start(ServiceConfig::default());
    // About 1,600 lines' worth of payloads.
    let (mut pod, _, _) = pod_with_outage("spill-budget", &service, &["-logsSpillBytes", "200000"]);
    let mut agent = pod.agent.take().expect("agent");
    assert_eq!(wait_exit(&mut agent, LONG), Some(0));
    service.set_down(false);

    assert_eq!(wait_exit(&mut pod.ctrl, LONG), Some(0));
    let dropped: u64 = dropped_counts(&service).iter().sum();
    assert!(
        (LINES - 2_000..LINES - 1_000).contains(&dropped),
        "most lines do not fit ({dropped} dropped)"
    );
    let got = numbers(&service);
    let want: Vec<u64> = (dropped + 1..=LINES).collect();
    assert!(
        got == want,
        "the oldest {dropped} lines were dropped, the rest arrived once, in order; got {} \
         lines, {:?}..{:?}",
        got.len(),
        got.first(),
        got.last()
    );
    let messages = service.messages();
    let warning = messages
        .iter()
        .position(|m| common::pod::text(m).starts_with("WARNING: Maximum logging rate"));
    let first_kept = messages
        .iter()
        .position(|m| common::pod::text(m) == (dropped + 1).to_string());
    assert!(warning < first_kept, "the warning marks the gap");
    assert_log_done_after_every_line(&service);
}

#[test]
fn a_ctrl_killed_while_the_service_is_away_leaves_its_lines_to_the_next() {
    let service = OsmoService::start(ServiceConfig::default());
    let (mut pod, journal, flags) = pod_with_outage("spill-restart", &service, &[]);
    let deadline = Instant::now() + LONG;
    while spilled_rows(&journal) < 10_000 {
        assert!(Instant::now() < deadline, "lines reach the journal");
        std::thread::sleep(Duration::from_millis(50));
    }
    pod.ctrl.kill().expect("SIGKILL ctrl");
    pod.ctrl.wait().expect("reap ctrl");
    let refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    pod.ctrl = Pod::start_ctrl(&pod.dir, service.config(), service.port(), &refs);
    std::thread::sleep(Duration::from_secs(1));
    service.set_down(false);

    let mut agent = pod.agent.take().expect("agent");
    assert_eq!(wait_exit(&mut agent, LONG), Some(0));
    assert_eq!(wait_exit(&mut pod.ctrl, LONG), Some(0));
    let duplicates = assert_all_in_order(&numbers(&service), 1, LINES);
    eprintln!("{duplicates} lines sent twice");
    assert_eq!(
        dropped_counts(&service),
        Vec::<u64>::new(),
        "no line dropped"
    );
    assert!(texts_of(&service.messages(), "OSMO_CTRL")
        .iter()
        .any(|t| t == "ctrl restarted; the command is still running"
            || t == "ctrl restarted; the command ended with code 0"));
    assert_log_done_after_every_line(&service);
}
