//! A pod with a service and a router stand-in around it, for the session tests.
//! Each session test binary uses part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use crate::common::pod::Pod;
use crate::common::router::{ClientLink, Connect, Kind, Router, RouterConfig};
use crate::common::tcp_server::TcpServer;
use crate::common::{OsmoService, ServiceConfig};

pub const T: Duration = Duration::from_secs(10);

pub struct SessionPod {
    pub service: OsmoService,
    pub router: Router,
    pub pod: Pod,
}

impl SessionPod {
    /// ctrl and the agent (running `script`) with a service and a router.
    pub fn start(name: &str, script: &str, extra: &[&str]) -> SessionPod {
        SessionPod::with_agent(name, extra, |dir| Pod::start_agent(dir, script))
    }

    /// As [`start`](Self::start), with the agent `start_agent` starts in the pod's
    /// folder (another agent, or the agent started another way).
    pub fn with_agent(
        name: &str,
        extra: &[&str],
        start_agent: impl FnOnce(&Path) -> Child,
    ) -> SessionPod {
        let cfg = ServiceConfig::default();
        let service = OsmoService::start(cfg.clone());
        let router = Router::start(RouterConfig::default());
        let dir = crate::common::pod::pod_dir(name);
        let ctrl = Pod::start_ctrl(&dir, &cfg, service.port(), extra);
        let agent = Some(start_agent(&dir));
        let pod = Pod { dir, ctrl, agent };
        // The action needs the agent connected (exec) and the JWT (every link).
        assert!(
            service.wait_for_connections(1, T),
            "ctrl never reached the service"
        );
        SessionPod {
            service,
            router,
            pod,
        }
    }

    /// Sends an action for the router stand-in; `fields` is the rest of its JSON.
    pub fn action(&self, action: &str, key: &str, fields: &str) {
        let sep = if fields.is_empty() { "" } else { ", " };
        self.service.send_action(&format!(
            r#"{{"action": "{action}", "router_address": "{}", "key": "{key}", "cookie": "c-{key}"{sep}{fields}}}"#,
            self.router.address()
        ));
    }

    /// ctrl and the agent are both still running.
    pub fn both_alive(&mut self) -> bool {
        let agent_alive = match self.pod.agent.as_mut() {
            Some(agent) => matches!(agent.try_wait(), Ok(None)),
            None => false,
        };
        agent_alive && matches!(self.pod.ctrl.try_wait(), Ok(None))
    }

    /// OSMO_CTRL log lines so far.
    pub fn ctrl_lines(&self) -> Vec<String> {
        crate::common::pod::texts_of(&self.service.messages(), "OSMO_CTRL")
    }

    /// Waits for an OSMO_CTRL line containing `needle`.
    pub fn wait_line(&self, needle: &str) -> bool {
        self.service.wait_for(
            |m| {
                crate::common::pod::texts_of(m, "OSMO_CTRL")
                    .iter()
                    .any(|l| l.contains(needle))
            },
            T,
        )
    }
}

/// A TCP server that echoes every byte back.
pub fn echo_server() -> TcpServer {
    TcpServer::start(|mut stream: TcpStream| {
        let mut buf = [0u8; 64 * 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if stream.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    })
}

/// Deterministic bytes that differ at every offset of a frame.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

/// Sends an `exec` action and returns the user's end of its link.
pub fn exec(pod: &SessionPod, key: &str, command: &str) -> ClientLink {
    pod.action("exec", key, &format!(r#""entry_command": "{command}""#));
    pod.router.client(Kind::Exec, key, T)
}

/// Reads the terminal until `needle` shows; returns what was read.
pub fn expect(link: &ClientLink, needle: &str) -> String {
    let out = link.read_until(T, |b| String::from_utf8_lossy(b).contains(needle));
    String::from_utf8_lossy(&out).into_owned()
}

/// Opens `n` connections on a port-forward control link to an echo server and checks
/// that each gets its own bytes back, all at once; returns the bytes each sent.
pub fn echo_concurrently(
    router: &Router,
    control: &ClientLink,
    n: usize,
    len: usize,
) -> Vec<usize> {
    let links: Vec<_> = (0..n)
        .map(|_| {
            router
                .open_connection(control, &Connect::Tcp, T)
                .expect("connection")
        })
        .collect();
    let sizes: Vec<usize> = (0..n).map(|i| len + i * 7919).collect();
    std::thread::scope(|s| {
        for (i, link) in links.iter().enumerate() {
            let size = sizes[i];
            s.spawn(move || {
                let data = pattern(size, i as u8);
                for chunk in data.chunks(50_000) {
                    link.send_binary(chunk);
                }
                let got = link.read_bytes(data.len(), T);
                assert!(got == data, "connection {i}: the echo differs");
                link.close();
            });
        }
    });
    sizes
}

/// Sends the initial size 33x101, then a resize to 40x120 split across two messages,
/// and checks `stty size` shows each: the same exchange whichever agent serves the pty.
pub fn check_size_and_split_resize(link: &ClientLink) {
    link.send_binary(br#"{"Rows": 33, "Cols": 101}"#);
    link.send_binary(b"stty size\n");
    expect(link, "33 101");
    link.send_binary(b"\0RESIZE:{\"Rows\": 4");
    link.send_binary(b"0, \"Cols\": 120}stty size\n");
    expect(link, "40 120");
}
