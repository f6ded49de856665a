//! TCP port-forwards into a user container with a network namespace of its own (as some
//! Slurm and HPC container runtimes give): the sidewire agent runs under `unshare --net`
//! with its command serving TCP on 127.0.0.1 in that namespace, which ctrl cannot reach
//! from its own. ctrl asks the agent to dial (`SidewireDial`) and gets the connected
//! socket back (SCM_RIGHTS), so the agent stays out of the data path.

mod common;
mod sessions {
    pub mod support;
}

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::fake_ctrl::cpu_seconds;
use common::pod::{texts_of, Pod};
use common::router::{ClientLink, Connect, Kind, LinkEnd};
use sessions::support::{echo_concurrently, pattern, SessionPod, T};
use socket2::{Domain, Socket, Type};

/// Bytes pushed through the sink.
const PUSH: usize = 100_000_000;

/// Serves on 127.0.0.1 in the agent's namespace: an echo on argv[1], and on argv[2] a
/// sink that says `ready`, takes argv[3] bytes and answers with how many it got. It ends
/// with the agent (which the test kills), since nothing else would end it.
const SERVERS: &str = r#"
import os, socket, sys, threading, time

def serve(port, handle):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    def accept():
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()
    threading.Thread(target=accept, daemon=True).start()

def echo(conn):
    while True:
        data = conn.recv(65536)
        if not data:
            break
        conn.sendall(data)
    conn.close()

def sink(conn):
    conn.sendall(b"ready\n")
    want, got, buf = int(sys.argv[3]), 0, bytearray(1 << 20)
    while got < want:
        n = conn.recv_into(buf)
        if n == 0:
            break
        got += n
    conn.sendall(b"got %d\n" % got)
    conn.close()

serve(int(sys.argv[1]), echo)
serve(int(sys.argv[2]), sink)
print("listening", flush=True)
agent = os.getppid()
while os.getppid() == agent:
    time.sleep(0.2)
"#;

/// A port held in this (ctrl's) namespace by a socket that is bound but never listens,
/// so a connect to it is refused for as long as the test keeps the socket. Merely
/// picking a free port is not enough: tests run in parallel, and another test's listener
/// or outgoing connection could take the port in the meantime, letting ctrl reach it
/// without the agent.
fn reserved_port() -> (Socket, u16) {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let port = socket.local_addr().unwrap().as_socket().unwrap().port();
    (socket, port)
}

/// The agent as `osmo_exec` in a network namespace of its own (loopback up), running
/// `sh -c script`; `unshare` and `sh` exec into it, so the child's pid is the agent's.
fn agent_in_own_netns(dir: &Path, script: &str) -> Child {
    Command::new("unshare")
        .args([
            "--net",
            "sh",
            "-c",
            "ip link set lo up && exec \"$0\" \"$@\"",
        ])
        .arg(dir.join("osmo_exec"))
        .args(Pod::agent_args(dir, script))
        .current_dir(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("unshare (util-linux) runs the agent")
}

struct Ports {
    echo: u16,
    sink: u16,
    /// Keeps `echo` and `sink` refused in ctrl's namespace.
    _held: [Socket; 2],
}

/// A pod whose agent serves echo and sink ports in its own namespace, once they listen.
fn start(name: &str) -> (SessionPod, Ports) {
    let (echo_hold, echo) = reserved_port();
    let (sink_hold, sink) = reserved_port();
    let ports = Ports {
        echo,
        sink,
        _held: [echo_hold, sink_hold],
    };
    let dir_script = format!(
        "exec python3 servers.py {} {} {PUSH}",
        ports.echo, ports.sink
    );
    let pod = SessionPod::with_agent(name, &[], |dir| {
        std::fs::write(dir.join("servers.py"), SERVERS).unwrap();
        agent_in_own_netns(dir, &dir_script)
    });
    assert!(
        pod.service.wait_for(
            |m| texts_of(m, "STDOUT").contains(&"listening".to_owned()),
            T
        ),
        "the servers never listened: {:?}",
        texts_of(&pod.service.messages(), "STDERR")
    );
    // ctrl's namespace has neither port: a forward can only go through the agent.
    for port in [ports.echo, ports.sink] {
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "{port}");
    }
    let agent = pod.pod.agent.as_ref().unwrap().id();
    let comm = std::fs::read_to_string(format!("/proc/{agent}/comm")).unwrap();
    assert_eq!(comm.trim(), "osmo_exec");
    (pod, ports)
}

fn forward(pod: &SessionPod, key: &str, port: u16) -> ClientLink {
    pod.action(
        "portforward",
        key,
        &format!(r#""task_port": {port}, "use_udp": false"#),
    );
    pod.router.client(Kind::Portforward, key, T)
}

#[test]
fn connections_dialled_by_the_agent_echo_byte_identical() {
    let (pod, ports) = start("dial-echo");
    let control = forward(&pod, "ad1", ports.echo);
    echo_concurrently(&pod.router, &control, 4, 500_000);
    assert!(
        pod.router.violations().is_empty(),
        "{:?}",
        pod.router.violations()
    );
}

#[test]
fn pushing_100_mb_through_a_dialled_socket_costs_the_agent_nothing() {
    let (mut pod, ports) = start("dial-push");
    let agent = pod.pod.agent.as_ref().unwrap().id();
    let control = forward(&pod, "ad2", ports.sink);
    let link = pod
        .router
        .open_connection(&control, &Connect::Tcp, T)
        .expect("connection");
    // The sink's greeting: the socket the agent dialled is joined to the link.
    assert_eq!(link.read_bytes(6, T), b"ready\n");
    let before = cpu_seconds(agent);
    let chunk = pattern(1 << 20, 3);
    let mut left = PUSH;
    while left > 0 {
        let n = left.min(chunk.len());
        link.send_binary(&chunk[..n]);
        left -= n;
    }
    let answer = link.read_until(Duration::from_secs(60), |b| b.ends_with(b"\n"));
    assert_eq!(String::from_utf8_lossy(&answer), format!("got {PUSH}\n"));
    let spent = cpu_seconds(agent) - before;
    assert!(
        spent < 0.05,
        "the agent spent {spent} s of CPU on a forward it passed on"
    );
    assert!(pod.both_alive());
}

#[test]
fn a_port_closed_in_the_agents_namespace_ends_with_a_reason_and_the_next_connection_works() {
    let (mut pod, ports) = start("dial-closed");
    let (_closed_hold, closed) = reserved_port();
    let control = forward(&pod, "ad3", closed);
    let link = pod
        .router
        .open_connection(&control, &Connect::Tcp, T)
        .expect("connection");
    let started = Instant::now();
    match link.wait_end(Duration::from_secs(20)) {
        Some(LinkEnd::Closed { code: 1011, reason }) => {
            assert!(
                reason.contains("the agent could not dial")
                    && reason.contains(&format!("127.0.0.1:{closed}"))
                    && reason.contains("refused"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    // ctrl handed the dial over after its own first try, not after all of them.
    let took = started.elapsed();
    assert!(took < Duration::from_millis(7500), "{took:?}");
    assert!(
        pod.wait_line(&format!("portforward connection to port {closed} ended")),
        "{:?}",
        pod.ctrl_lines()
    );
    assert!(pod.both_alive());
    // The agent and ctrl are still up: the next connection goes through.
    let control = forward(&pod, "ad4", ports.echo);
    let link = pod
        .router
        .open_connection(&control, &Connect::Tcp, T)
        .expect("connection");
    link.send_binary(b"still there?");
    assert_eq!(link.read_bytes(12, T), b"still there?");
}
