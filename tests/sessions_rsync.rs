//! rsync through ctrl, end to end: the agent runs a real rsync daemon, ctrl relays the
//! `rsync` action's connections to it, and a real rsync client pushes and pulls a tree
//! through the router stand-in (a local TCP port bridged to per-connection links, as the
//! CLI's port-forward does), with the agent's read and write limits held by ctrl.

mod common;
mod sessions {
    pub mod support;
}

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::pod::Pod;
use common::router::{ClientLink, Kind, Msg, Router, RouterConfig};
use common::{OsmoService, ServiceConfig};
use sessions::support::{pattern, T};

/// Bytes per second the agent allows each way.
const LIMIT: u64 = 16 << 20;

struct RsyncPod {
    service: OsmoService,
    router: Arc<Router>,
    pod: Pod,
}

fn start(name: &str) -> RsyncPod {
    let cfg = ServiceConfig::default();
    let service = OsmoService::start(cfg.clone());
    let router = Arc::new(Router::start(RouterConfig::default()));
    let dir = common::pod::pod_dir(name);
    let ctrl = Pod::start_ctrl(&dir, &cfg, service.port(), &[]);
    let rsync_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::create_dir_all(dir.join("run/workspace")).unwrap();
    let agent = Command::new(dir.join("osmo_exec"))
        .args(Pod::agent_args(&dir, "sleep 120"))
        .args(["-enableRsync", "-rsyncPort", &rsync_port.to_string()])
        .args(["-runLocation", &dir.join("run").display().to_string()])
        .args([
            "-rsyncReadLimit",
            &LIMIT.to_string(),
            "-rsyncWriteLimit",
            &LIMIT.to_string(),
        ])
        .current_dir(&dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(service.wait_for_connections(1, T));
    RsyncPod {
        service,
        router,
        pod: Pod {
            dir,
            ctrl,
            agent: Some(agent),
        },
    }
}

/// Opens an rsync control link once the agent has told ctrl its daemon runs.
fn control(pod: &RsyncPod) -> ClientLink {
    let runs = |m: &[serde_json::Map<String, serde_json::Value>]| {
        common::pod::texts_of(m, "OSMO_CTRL")
            .iter()
            .any(|l| l.starts_with("The task's rsync daemon runs on port"))
    };
    assert!(pod.service.wait_for(runs, T), "the daemon never ran");
    pod.service.send_action(&format!(
        r#"{{"action": "rsync", "router_address": "{}", "key": "rs1", "cookie": "c", "enable_telemetry": true}}"#,
        pod.router.address()
    ));
    pod.router.client(Kind::Rsync, "rs1", T)
}

/// A local port whose every connection is carried over a new per-connection link, the
/// way the CLI's port-forward serves a local rsync client.
fn bridge(router: Arc<Router>, control: ClientLink) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let control = Arc::new(control);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let link = match router.open_connection(&control, &common::router::Connect::Tcp, T) {
                Ok(link) => Arc::new(link),
                Err(e) => panic!("bridge: {e}"),
            };
            let (mut up, mut down) = (stream.try_clone().unwrap(), stream);
            let uplink = link.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match up.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => uplink.send_binary(&buf[..n]),
                    }
                }
                uplink.close();
            });
            std::thread::spawn(move || {
                while let Ok(Msg::Binary(data)) = link.recv(Duration::from_secs(60)) {
                    if down.write_all(&data).is_err() {
                        break;
                    }
                }
                let _ = down.shutdown(Shutdown::Both);
            });
        }
    });
    port
}

fn rsync(args: &[&str]) {
    let out = Command::new("rsync").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "rsync {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn same_tree(a: &Path, b: &Path) {
    for name in ["big.bin", "small/one.txt"] {
        assert!(
            std::fs::read(a.join(name)).unwrap() == std::fs::read(b.join(name)).unwrap(),
            "{name} differs"
        );
    }
}

#[test]
fn push_and_pull_a_tree_through_the_relay_within_the_limits() {
    let pod = start("rsync");
    let link = control(&pod);
    let port = bridge(pod.router.clone(), link);
    let src = pod.pod.dir.join("src");
    std::fs::create_dir_all(src.join("small")).unwrap();
    std::fs::write(src.join("big.bin"), pattern(50 << 20, 5)).unwrap();
    std::fs::write(src.join("small/one.txt"), b"one\n").unwrap();
    let url = format!("rsync://127.0.0.1:{port}/osmo/tree/");

    let started = Instant::now();
    rsync(&["-a", "--whole-file", &format!("{}/", src.display()), &url]);
    let push = started.elapsed().as_secs_f64();
    same_tree(&src, &pod.pod.dir.join("run/workspace/tree"));

    let back = pod.pod.dir.join("back");
    let started = Instant::now();
    rsync(&["-a", "--whole-file", &url, &format!("{}/", back.display())]);
    let pull = started.elapsed().as_secs_f64();
    same_tree(&src, &back);

    // 50 MiB at 16 MiB/s is 3.1 s each way: within 10% (and never faster).
    let floor = (50u64 << 20) as f64 / LIMIT as f64;
    for (what, secs) in [("push", push), ("pull", pull)] {
        assert!(
            secs >= floor * 0.9 && secs <= floor * 1.1 + 1.0,
            "{what} took {secs:.2} s, the limit gives {floor:.2} s"
        );
    }
    stop_agent(pod);
}

/// Ends the agent with SIGTERM, so it stops its daemon (SIGKILL would orphan it).
fn stop_agent(mut pod: RsyncPod) {
    let mut agent = pod.pod.agent.take().unwrap();
    Command::new("kill")
        .args(["-TERM", &agent.id().to_string()])
        .status()
        .unwrap();
    assert!(common::pod::wait_exit(&mut agent, T).is_some());
}
