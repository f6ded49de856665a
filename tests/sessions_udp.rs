//! UDP port-forwards through ctrl, end to end: datagrams from 1,000 remote addresses
//! reach a real UDP echo server and come back with the header they came for; sockets of
//! idle remotes are closed; a frame too short for its header is dropped and logged.

mod common;
mod sessions {
    pub mod support;
}

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use common::router::{decode_udp_frame, encode_udp_frame, Kind, Msg};
use sessions::support::{SessionPod, T};

/// A UDP server that sends every datagram back to its sender, until the socket closes.
fn udp_echo() -> (u16, std::thread::JoinHandle<()>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let port = socket.local_addr().unwrap().port();
    let thread = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            if &buf[..n] == b"stop" {
                return;
            }
            let _ = socket.send_to(&buf[..n], from);
        }
    });
    (port, thread)
}

/// The UDP sockets process `pid` holds: its descriptors whose socket inode the kernel's
/// UDP tables list. Other descriptors ctrl may open meanwhile (a link dialled again, a
/// timer) do not count.
fn udp_sockets(pid: u32) -> usize {
    let mut inodes = std::collections::HashSet::new();
    for table in ["udp", "udp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        // Column 10 of each entry is the socket's inode.
        inodes.extend(
            text.lines()
                .skip(1)
                .filter_map(|line| line.split_whitespace().nth(9).map(str::to_owned)),
        );
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| {
            target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .is_some_and(|inode| inodes.contains(inode))
        })
        .count()
}

#[test]
fn a_thousand_remotes_get_their_echo_and_idle_sockets_are_closed() {
    let (port, echo) = udp_echo();
    let mut pod = SessionPod::start("udp", "sleep 60", &["-udpIdleTimeout", "5"]);
    pod.action(
        "portforward",
        "udp1",
        &format!(r#""task_port": {port}, "use_udp": true"#),
    );
    let link = pod.router.client(Kind::Portforward, "udp1", T);
    let ctrl = pod.pod.ctrl.id();
    let baseline = udp_sockets(ctrl);

    let remote = |i: u32| {
        let [_, _, b, c] = i.to_be_bytes();
        SocketAddrV4::new(Ipv4Addr::new(10, 9, b, c), 20_000 + (i % 1000) as u16)
    };
    let payload = |i: u32| {
        format!("datagram {i} ")
            .repeat(1 + (i % 50) as usize)
            .into_bytes()
    };
    let want: HashMap<SocketAddrV4, Vec<u8>> = (0..1000).map(|i| (remote(i), payload(i))).collect();
    let mut missing = want.clone();
    // UDP may drop a datagram when a socket buffer is full, so a remote without its echo
    // sends again, as a UDP client would; a few rounds at most.
    let mut peak_sockets = 0;
    for _round in 0..5 {
        for (from, datagram) in &missing {
            link.send_binary(&encode_udp_frame(*from, datagram));
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while !missing.is_empty() {
            let Ok(Msg::Binary(frame)) =
                link.recv(deadline.saturating_duration_since(Instant::now()))
            else {
                break;
            };
            let (from, datagram) = decode_udp_frame(&frame).expect("a header");
            if want.get(&from).is_some_and(|w| w == datagram) {
                missing.remove(&from);
            }
        }
        // Every remote has its socket by the end of the first round (sockets live 5 s).
        peak_sockets = peak_sockets.max(udp_sockets(ctrl));
        if missing.is_empty() {
            break;
        }
    }
    // A frame shorter than its header is dropped with a log line; the forward goes on.
    link.send_binary(&[1, 2, 3]);
    let want = missing;
    assert!(want.is_empty(), "{} remotes got no echo", want.len());
    link.send_binary(&encode_udp_frame(remote(3), b"after"));
    assert_eq!(
        decode_udp_frame(&link.recv_binary(T)),
        Some((remote(3), &b"after"[..]))
    );
    assert!(peak_sockets >= baseline + 1000, "one socket per remote");
    assert!(
        pod.wait_line("shorter than its 6-byte address header"),
        "{:?}",
        pod.ctrl_lines()
    );

    // Five seconds without datagrams: every remote's socket is closed.
    let deadline = Instant::now() + T;
    while udp_sockets(ctrl) > baseline && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        udp_sockets(ctrl),
        baseline,
        "sockets left after the idle timeout"
    );
    // A remote that comes back gets a new socket.
    link.send_binary(&encode_udp_frame(remote(7), b"again"));
    let frame = link.recv_binary(T);
    assert_eq!(decode_udp_frame(&frame), Some((remote(7), &b"again"[..])));
    assert!(pod.both_alive());
    let stopper = UdpSocket::bind("127.0.0.1:0").unwrap();
    stopper.send_to(b"stop", ("127.0.0.1", port)).unwrap();
    echo.join().unwrap();
}
