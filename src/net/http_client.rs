//! One HTTP/1.1 request and its whole (small) answer over a fresh connection: the token
//! refresh uses it. Large streamed bodies (object stores) use the codec directly.

use std::io;
use std::time::{Duration, Instant};

use mio::{Registry, Token};

use super::connect::{Connector, Progress};
use super::transport::Transport;
use super::{Endpoint, NetCtx};
use crate::proto::http::{Collector, Response};

/// The largest answer body kept (token answers are a few hundred bytes).
const MAX_BODY: u64 = 1 << 20;

enum Stage {
    Connecting(Box<Connector>),
    Exchanging(Transport),
    Done,
}

pub struct HttpExchange {
    stage: Stage,
    request: Vec<u8>,
    written: usize,
    collector: Collector,
    rbuf: Vec<u8>,
    deadline: Instant,
    endpoint: Endpoint,
}

impl HttpExchange {
    /// Starts sending `request` (a whole request, head and body) to `endpoint`.
    pub fn start(
        ctx: &mut NetCtx,
        endpoint: Endpoint,
        request: Vec<u8>,
        token: Token,
        now: Instant,
        timeout: Duration,
    ) -> HttpExchange {
        let connector = Connector::start(ctx, endpoint.clone(), token, now, timeout);
        HttpExchange {
            stage: Stage::Connecting(Box::new(connector)),
            request,
            written: 0,
            collector: Collector::new(MAX_BODY, false),
            rbuf: Vec::new(),
            deadline: now + timeout,
            endpoint,
        }
    }

    pub fn deadline(&self) -> Instant {
        match &self.stage {
            Stage::Connecting(c) => c.deadline().min(self.deadline),
            _ => self.deadline,
        }
    }

    pub fn abort(&mut self, registry: &Registry) {
        match &mut self.stage {
            Stage::Connecting(c) => c.abort(registry),
            Stage::Exchanging(t) => {
                let _ = registry.deregister(t.tcp());
            }
            Stage::Done => {}
        }
        self.stage = Stage::Done;
    }

    /// Makes progress; `Some` once the answer is complete or the exchange failed.
    pub fn advance(
        &mut self,
        ctx: &mut NetCtx,
        registry: &Registry,
        now: Instant,
    ) -> Option<Result<Response, String>> {
        let result = self.step(ctx, registry, now);
        if result.is_some() {
            self.abort(registry);
        }
        result
    }

    fn step(
        &mut self,
        ctx: &mut NetCtx,
        registry: &Registry,
        now: Instant,
    ) -> Option<Result<Response, String>> {
        if now >= self.deadline {
            return Some(Err(format!("{}: request timed out", self.endpoint)));
        }
        if let Stage::Connecting(c) = &mut self.stage {
            match c.advance(ctx, registry, now) {
                Ok(Progress::Pending) => return None,
                Ok(Progress::Ready(t)) => self.stage = Stage::Exchanging(t),
                Err(e) => return Some(Err(e.to_string())),
            }
        }
        let Stage::Exchanging(transport) = &mut self.stage else {
            return Some(Err("exchange already finished".into()));
        };
        match exchange(
            transport,
            &self.request,
            &mut self.written,
            &mut self.rbuf,
            &mut self.collector,
        ) {
            Ok(None) => None,
            Ok(Some(response)) => Some(Ok(response)),
            Err(e) => Some(Err(format!("{}: {e}", self.endpoint))),
        }
    }
}

/// Writes what remains of the request and parses what arrived.
fn exchange(
    transport: &mut Transport,
    request: &[u8],
    written: &mut usize,
    rbuf: &mut Vec<u8>,
    collector: &mut Collector,
) -> Result<Option<Response>, String> {
    while *written < request.len() {
        match transport.write(&request[*written..]) {
            Ok(n) => *written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(format!("write: {e}")),
        }
    }
    transport.flush().map_err(|e| format!("write: {e}"))?;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match transport.read(&mut chunk) {
            Ok(0) => return collector.eof().map_err(|e| e.to_string()),
            Ok(n) => {
                rbuf.extend_from_slice(&chunk[..n]);
                loop {
                    let (used, done) = collector.feed(rbuf).map_err(|e| e.to_string())?;
                    rbuf.drain(..used);
                    if done.is_some() {
                        return Ok(done);
                    }
                    if used == 0 {
                        break;
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}
