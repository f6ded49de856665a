//! Moves one backend link's frames: the connection's thread reads (tungstenite),
//! a writer thread of its own writes, so a backend that writes without reading for
//! a while can never block what the router sends it, nor the other way round.
//! tungstenite's own writes after the handshake (pong and close replies) are
//! swallowed by [`ReadSide`]; the writer sends them instead, in order.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use tungstenite::{Error, Message, WebSocket};

use super::super::ws_raw::encode_frame;
use super::link::{Cmd, CopyMode, LinkCore, LinkEnd, Msg};
use super::{Kind, Shared};

/// How long a close handshake may take before the socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The socket as tungstenite sees it: reads pass through; writes pass through
/// during the handshake only.
pub(super) struct ReadSide {
    pub(super) stream: TcpStream,
    pub(super) handshake_done: bool,
}

impl Read for ReadSide {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

impl Write for ReadSide {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.handshake_done {
            Ok(buf.len())
        } else {
            self.stream.write(buf)
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.handshake_done {
            Ok(())
        } else {
            self.stream.flush()
        }
    }
}

/// Runs the link until it ends; `pair_timeout` is the router's `timeout` for a
/// backend nobody pairs with (closed with 4000 "Router connection timeout").
pub(super) fn run(
    shared: &Shared,
    core: &Arc<LinkCore>,
    mut ws: WebSocket<ReadSide>,
    cmds: Receiver<Cmd>,
    pair_timeout: Option<Duration>,
) {
    let Ok(out) = ws.get_ref().stream.try_clone() else {
        core.finish(LinkEnd::Lost("cannot clone the socket".into()));
        return;
    };
    let writer = {
        let core = core.clone();
        thread::spawn(move || write_loop(out, &cmds, &core))
    };
    let end = read_loop(shared, core, &mut ws, pair_timeout);
    // A link that ends before a client paired with it stays pending: router.py relays
    // only once both sides are there, and what the backend sent before it closed waits
    // in the socket, so the client that comes still reads it and then the close. (A
    // paired or timed-out link is no longer pending; a webserver link is dropped.)
    if core.dial.kind == Kind::Webserver {
        shared.unpend(core);
    }
    core.finish(end);
    core.queue(Cmd::Stop);
    // Let the writer send what is queued (a close reply), then stop it for good.
    let until = Instant::now() + CLOSE_GRACE;
    while !writer.is_finished() && Instant::now() < until {
        thread::sleep(Duration::from_millis(1));
    }
    let _ = ws.get_ref().stream.shutdown(Shutdown::Both);
    let _ = writer.join();
}

fn read_loop(
    shared: &Shared,
    core: &Arc<LinkCore>,
    ws: &mut WebSocket<ReadSide>,
    pair_timeout: Option<Duration>,
) -> LinkEnd {
    let started = Instant::now();
    let mut timed_out = false;
    loop {
        let closing = core.closing_since();
        if closing.is_some_and(|at| at.elapsed() > CLOSE_GRACE) {
            return LinkEnd::Lost("no close reply from the backend".into());
        }
        if !timed_out
            && !core.paired.load(Ordering::SeqCst)
            && pair_timeout.is_some_and(|t| started.elapsed() > t)
        {
            timed_out = true;
            shared.unpend(core);
            core.queue(Cmd::Close(4000, "Router connection timeout".into()));
        }
        if core.inbox_full() {
            continue;
        }
        match ws.read() {
            Ok(Message::Binary(b)) => {
                if b.is_empty() && core.mode() == CopyMode::Bytes {
                    shared.violation(format!(
                        "{}: an empty BINARY message, which ends the router's copy",
                        core.dial.describe()
                    ));
                }
                core.push(Msg::Binary(b.to_vec()));
            }
            Ok(Message::Text(t)) => {
                if core.mode() == CopyMode::Bytes && core.dial.kind != Kind::Webserver {
                    shared.violation(format!(
                        "{}: a TEXT message on a byte link (the router only copies BINARY)",
                        core.dial.describe()
                    ));
                }
                core.push(Msg::Text(t.to_string()));
            }
            Ok(Message::Ping(p)) => core.queue(Cmd::Pong(p.to_vec())),
            Ok(Message::Close(frame)) => {
                let (code, reason) = frame.map_or((1005, String::new()), |f| {
                    (u16::from(f.code), f.reason.to_string())
                });
                if closing.is_none() {
                    core.queue(Cmd::CloseReply(code, reason.clone()));
                }
                return LinkEnd::Closed { code, reason };
            }
            Ok(_) => {}
            Err(Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if core.cut.load(Ordering::SeqCst) => {
                return LinkEnd::Lost(format!("cut by the test ({e})"))
            }
            Err(e) => return LinkEnd::Lost(e.to_string()),
        }
    }
}

/// Writes queued commands as unmasked server frames until told to stop.
fn write_loop(mut out: TcpStream, cmds: &Receiver<Cmd>, core: &LinkCore) {
    let mut closed = false;
    while let Ok(cmd) = cmds.recv() {
        let frame = match cmd {
            Cmd::Stop => return,
            Cmd::Cut => {
                core.cut.store(true, Ordering::SeqCst);
                let _ = out.shutdown(Shutdown::Both);
                return;
            }
            _ if closed => continue,
            Cmd::Send(Message::Binary(b)) => encode_frame(0x82, &b, None),
            Cmd::Send(Message::Text(t)) => encode_frame(0x81, t.as_bytes(), None),
            Cmd::Send(_) => continue,
            Cmd::Pong(p) => encode_frame(0x8A, &p, None),
            Cmd::Close(code, reason) => {
                closed = true;
                *core.closing.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
                encode_frame(0x88, &close_payload(code, &reason), None)
            }
            Cmd::CloseReply(code, reason) => {
                closed = true;
                encode_frame(0x88, &close_payload(code, &reason), None)
            }
        };
        if out.write_all(&frame).is_err() {
            return;
        }
    }
}

/// Code 1005 means "no code": an empty close payload.
fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    if code == 1005 {
        return Vec::new();
    }
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}
