//! An HTTP/1.1 proxy that sits in front of the S3 test server (`tests/common/s3_server.rs`) and breaks
//! chosen exchanges on purpose: S3 error answers (503 SlowDown, 500 InternalError),
//! connection resets before or after the upstream did the work, truncated, stalled or
//! corrupted response or request bodies. Client connections are kept alive across requests; each
//! request goes to upstream on a fresh connection. Bodies are streamed (by
//! Content-Length or chunked framing), never buffered whole. Every request is logged
//! with what happened to it, so a test can count requests or look for repeats.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::tcp_server::TcpServer;

/// Largest request or response head relayed.
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 128;
/// How long the proxy waits on upstream before giving up on an exchange.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);

/// What to do to one exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer 503 with an S3 `SlowDown` error body; upstream never sees the request.
    SlowDown,
    /// Answer 500 with an S3 `InternalError` error body; upstream never sees it.
    InternalError,
    /// Answer 400 with an S3 `InvalidPart` error body (a refusal no retry changes);
    /// upstream never sees it.
    InvalidPart,
    /// Reset the client connection (RST) once the request head is read.
    ResetBeforeForward,
    /// Forward the whole request, let upstream answer, then reset the client instead
    /// of relaying the answer: the work is done but the client cannot know.
    ResetAfterForward,
    /// Relay the response head and the first K body bytes, then close.
    TruncateBody(u64),
    /// Send nothing for this long, then forward as usual.
    Stall(Duration),
    /// Relay K body bytes, pause this long, then relay the rest.
    StallBody(u64, Duration),
    /// Flip the lowest bit of body byte K (if the body is that long).
    CorruptByte(u64),
    /// Flip the lowest bit of request body byte K on its way to upstream (if the body is
    /// that long): bytes damaged between the client and the store.
    CorruptRequestByte(u64),
}

#[derive(Clone, Debug)]
enum Trigger {
    /// The next N matching requests.
    Next(usize),
    /// Each matching request with this probability (the plan's seeded RNG decides).
    Fraction(f64),
}

/// One fault, when it applies, and to which requests.
#[derive(Clone, Debug)]
pub struct Rule {
    fault: Fault,
    trigger: Trigger,
    method: Option<String>,
    target_contains: Option<String>,
}

impl Rule {
    /// Applies `fault` to the next `n` matching requests.
    pub fn next(n: usize, fault: Fault) -> Rule {
        Rule {
            fault,
            trigger: Trigger::Next(n),
            method: None,
            target_contains: None,
        }
    }

    /// Applies `fault` to each matching request with probability `p` (0..=1).
    pub fn fraction(p: f64, fault: Fault) -> Rule {
        Rule {
            fault,
            trigger: Trigger::Fraction(p),
            method: None,
            target_contains: None,
        }
    }

    /// Only requests with this method (`"PUT"`, `"GET"`, ...).
    pub fn method(mut self, method: &str) -> Rule {
        self.method = Some(method.to_string());
        self
    }

    /// Only requests whose target (path and query) contains `s`.
    pub fn target(mut self, s: &str) -> Rule {
        self.target_contains = Some(s.to_string());
        self
    }

    fn matches(&self, method: &str, target: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method)
            && self
                .target_contains
                .as_deref()
                .is_none_or(|s| target.contains(s))
    }
}

/// The faults a proxy injects; shared with the test, which may change it mid-run.
#[derive(Debug)]
pub struct FaultPlan {
    rules: Vec<Rule>,
    rng: u64,
}

impl FaultPlan {
    /// No faults; `seed` drives the [`Rule::fraction`] draws, so runs repeat.
    pub fn seeded(seed: u64) -> FaultPlan {
        FaultPlan {
            rules: Vec::new(),
            rng: seed,
        }
    }

    /// A plan with no faults, ready to share.
    pub fn shared(seed: u64) -> Arc<Mutex<FaultPlan>> {
        Arc::new(Mutex::new(FaultPlan::seeded(seed)))
    }

    pub fn push(&mut self, rule: Rule) -> &mut FaultPlan {
        self.rules.push(rule);
        self
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// The fault for this request, if any: the first rule that matches and fires.
    fn pick(&mut self, method: &str, target: &str) -> Option<Fault> {
        for i in 0..self.rules.len() {
            let Some(rule) = self.rules.get(i) else { break };
            if !rule.matches(method, target) {
                continue;
            }
            let fires = match rule.trigger {
                Trigger::Next(0) => false,
                Trigger::Next(_) => true,
                Trigger::Fraction(p) => self.draw() < p,
            };
            if !fires {
                continue;
            }
            let rule = self.rules.get_mut(i)?;
            if let Trigger::Next(n) = &mut rule.trigger {
                *n -= 1;
            }
            return Some(rule.fault.clone());
        }
        None
    }

    /// Uniform in [0, 1) from splitmix64.
    fn draw(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One request the proxy saw; the log holds them in the order they ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// How many requests had arrived before this one (see [`FaultProxy::started`]).
    pub started: usize,
    pub method: String,
    pub target: String,
    pub fault: Option<Fault>,
    /// Whether upstream received the request.
    pub forwarded: bool,
    /// Status the client was sent (`None`: reset or failed before a response head).
    pub status: Option<u16>,
    /// The request's headers as the client sent them.
    pub headers: Vec<(String, String)>,
}

impl Exchange {
    /// The value of request header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `(upload id, part number)` when this is an UploadPart request.
    pub fn upload_part(&self) -> Option<(String, u32)> {
        if self.method != "PUT" {
            return None;
        }
        let query = self.target.split_once('?')?.1;
        let mut id = None;
        let mut number = None;
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("uploadId", v)) => id = Some(v.to_string()),
                Some(("partNumber", v)) => number = v.parse().ok(),
                _ => {}
            }
        }
        Some((id?, number?))
    }
}

struct Shared {
    upstream_port: u16,
    plan: Arc<Mutex<FaultPlan>>,
    log: Mutex<Vec<Exchange>>,
    /// Requests that have arrived, ended or not.
    started: AtomicUsize,
    /// Set on drop so stalls end early and the connection threads can be joined.
    closing: AtomicBool,
}

pub struct FaultProxy {
    pub port: u16,
    shared: Arc<Shared>,
    // Dropped after `Drop::drop` has set `closing`.
    _server: TcpServer,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FaultProxy {
    pub fn start(upstream_port: u16, plan: Arc<Mutex<FaultPlan>>) -> FaultProxy {
        let shared = Arc::new(Shared {
            upstream_port,
            plan,
            log: Mutex::new(Vec::new()),
            started: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
        });
        let server = {
            let shared = shared.clone();
            TcpServer::start(move |client| serve_client(&shared, client))
        };
        FaultProxy {
            port: server.port(),
            shared,
            _server: server,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many requests have arrived so far (each is logged when it ends).
    pub fn started(&self) -> usize {
        self.shared.started.load(Ordering::SeqCst)
    }

    /// Every request seen so far, in the order they ended.
    pub fn log(&self) -> Vec<Exchange> {
        lock(&self.shared.log).clone()
    }

    /// How many requests had this method and a target containing `target_contains`.
    pub fn count(&self, method: &str, target_contains: &str) -> usize {
        lock(&self.shared.log)
            .iter()
            .filter(|e| e.method == method && e.target.contains(target_contains))
            .count()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
    }
}

/// A parsed head: the start line's parts, the headers, and how a body is framed.
struct Head {
    method_or_version: String,
    target_or_status: String,
    headers: Vec<(String, Vec<u8>)>,
    /// A request's place in arrival order (see [`Exchange::started`]).
    seq: usize,
}

enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

impl Head {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.header(name)
            .and_then(|v| std::str::from_utf8(v).ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }

    fn content_length(&self) -> io::Result<Option<u64>> {
        match self.header("content-length") {
            None => Ok(None),
            Some(v) => std::str::from_utf8(v)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .map(Some)
                .ok_or_else(|| invalid("bad Content-Length")),
        }
    }

    fn request_framing(&self) -> io::Result<Framing> {
        if self.has_token("transfer-encoding", "chunked") {
            return Ok(Framing::Chunked);
        }
        Ok(self
            .content_length()?
            .map_or(Framing::None, Framing::Length))
    }

    fn response_framing(&self, request_method: &str) -> io::Result<Framing> {
        // The status line holds the reason phrase too ("204 No Content"): compare codes.
        let status = self.status();
        if request_method == "HEAD"
            || (100..200).contains(&status)
            || status == 204
            || status == 304
        {
            return Ok(Framing::None);
        }
        if self.has_token("transfer-encoding", "chunked") {
            return Ok(Framing::Chunked);
        }
        Ok(self
            .content_length()?
            .map_or(Framing::UntilClose, Framing::Length))
    }

    /// The head as bytes, without the headers named in `drop`.
    fn encode(&self, drop: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        let (a, b) = (&self.method_or_version, &self.target_or_status);
        out.extend_from_slice(format!("{a} {b}").as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in &self.headers {
            if drop.iter().any(|d| name.eq_ignore_ascii_case(d)) {
                continue;
            }
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Reads a head up to its blank line. `Ok(None)`: clean EOF before any byte.
fn read_raw_head(r: &mut impl BufRead) -> io::Result<Option<Vec<u8>>> {
    let mut raw = Vec::new();
    loop {
        let before = raw.len();
        let n = r
            .by_ref()
            .take(MAX_HEAD as u64)
            .read_until(b'\n', &mut raw)?;
        if n == 0 {
            return if before == 0 {
                Ok(None)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "EOF inside a head",
                ))
            };
        }
        if raw.len() > MAX_HEAD {
            return Err(invalid("head too large"));
        }
        if raw.ends_with(b"\r\n\r\n") || raw == b"\r\n" {
            return Ok(Some(raw));
        }
    }
}

fn read_request_head(r: &mut impl BufRead) -> io::Result<Option<Head>> {
    let Some(raw) = read_raw_head(r)? else {
        return Ok(None);
    };
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(&raw) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(invalid("malformed request head")),
    }
    Ok(Some(Head {
        method_or_version: req.method.unwrap_or_default().to_string(),
        target_or_status: format!("{} HTTP/1.1", req.path.unwrap_or_default()),
        headers: collect(req.headers),
        seq: 0,
    }))
}

fn read_response_head(r: &mut impl BufRead) -> io::Result<Head> {
    let raw = read_raw_head(r)?.ok_or_else(|| invalid("upstream closed without answering"))?;
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(&raw) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(invalid("malformed response head")),
    }
    Ok(Head {
        method_or_version: "HTTP/1.1".to_string(),
        target_or_status: format!(
            "{} {}",
            resp.code.unwrap_or_default(),
            resp.reason.unwrap_or("-")
        ),
        seq: 0,
        headers: collect(resp.headers),
    })
}

fn collect(headers: &[httparse::Header<'_>]) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect()
}

impl Head {
    fn status(&self) -> u16 {
        self.target_or_status
            .split(' ')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    fn target(&self) -> &str {
        self.target_or_status
            .rsplit_once(' ')
            .map_or("", |(t, _)| t)
    }
}

/// What to do to the response body while relaying it.
#[derive(Default)]
struct BodyEffect {
    truncate_at: Option<u64>,
    stall_at: Option<(u64, Duration)>,
    corrupt_at: Option<u64>,
}

/// Copies a body from `src` to `dst` as framed, applying `effect` at raw body byte
/// offsets (for chunked bodies the offsets count the framing too). Returns `false`
/// if the body was cut short on purpose.
fn relay_body(
    src: &mut impl BufRead,
    dst: &mut impl Write,
    framing: &Framing,
    effect: &BodyEffect,
    closing: &AtomicBool,
) -> io::Result<bool> {
    let mut pos = 0u64;
    match framing {
        Framing::None => Ok(true),
        Framing::Length(n) => copy_n(src, dst, Some(*n), &mut pos, effect, closing),
        Framing::UntilClose => copy_n(src, dst, None, &mut pos, effect, closing),
        Framing::Chunked => loop {
            let line = read_line(src)?;
            if !copy_bytes(dst, &line, &mut pos, effect, closing)? {
                return Ok(false);
            }
            let size_text = std::str::from_utf8(&line).map_err(|_| invalid("chunk size"))?;
            let size_text = size_text.split(';').next().unwrap_or_default().trim();
            let size = u64::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
            if size == 0 {
                // Trailers up to the blank line.
                loop {
                    let line = read_line(src)?;
                    if !copy_bytes(dst, &line, &mut pos, effect, closing)? {
                        return Ok(false);
                    }
                    if line == b"\r\n" {
                        return Ok(true);
                    }
                }
            }
            if !copy_n(src, dst, Some(size), &mut pos, effect, closing)? {
                return Ok(false);
            }
            let crlf = read_line(src)?;
            if !copy_bytes(dst, &crlf, &mut pos, effect, closing)? {
                return Ok(false);
            }
        },
    }
}

fn read_line(src: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    src.by_ref().take(4096).read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\n") {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "cut chunk framing",
        ));
    }
    Ok(line)
}

/// Copies `n` bytes (or up to EOF when `None`).
fn copy_n(
    src: &mut impl BufRead,
    dst: &mut impl Write,
    n: Option<u64>,
    pos: &mut u64,
    effect: &BodyEffect,
    closing: &AtomicBool,
) -> io::Result<bool> {
    let mut left = n;
    loop {
        if left == Some(0) {
            return Ok(true);
        }
        let buf = src.fill_buf()?;
        if buf.is_empty() {
            return match left {
                None => Ok(true),
                Some(_) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "body cut")),
            };
        }
        let take = left.map_or(buf.len(), |l| buf.len().min(l as usize));
        let chunk = buf.get(..take).unwrap_or_default().to_vec();
        src.consume(take);
        if let Some(l) = &mut left {
            *l -= take as u64;
        }
        if !copy_bytes(dst, &chunk, pos, effect, closing)? {
            return Ok(false);
        }
    }
}

/// Writes `bytes` (body offsets `pos..`), applying the effect; `false` once truncated.
fn copy_bytes(
    dst: &mut impl Write,
    bytes: &[u8],
    pos: &mut u64,
    effect: &BodyEffect,
    closing: &AtomicBool,
) -> io::Result<bool> {
    let start = *pos;
    let end = start + bytes.len() as u64;
    let mut out = bytes.to_vec();
    if let Some(k) = effect.corrupt_at.filter(|k| (start..end).contains(k)) {
        if let Some(b) = out.get_mut((k - start) as usize) {
            *b ^= 1;
        }
    }
    let cut = effect.truncate_at.filter(|k| *k < end);
    let stall = effect.stall_at.filter(|(k, _)| (start..end).contains(k));
    let split = cut.or(stall.map(|(k, _)| k)).map(|k| (k - start) as usize);
    match split {
        None => dst.write_all(&out)?,
        Some(at) => {
            dst.write_all(out.get(..at).unwrap_or_default())?;
            dst.flush()?;
            if cut.is_some() {
                *pos = start + at as u64;
                return Ok(false);
            }
            if let Some((_, pause)) = stall {
                pause_unless_closing(pause, closing);
            }
            dst.write_all(out.get(at..).unwrap_or_default())?;
        }
    }
    *pos = end;
    Ok(true)
}

fn pause_unless_closing(pause: Duration, closing: &AtomicBool) {
    let until = Instant::now() + pause;
    while Instant::now() < until && !closing.load(Ordering::SeqCst) {
        thread::sleep(Duration::from_millis(5).min(until - Instant::now()));
    }
}

fn s3_error(status: u16, reason: &str, code: &str, message: &str, close: bool) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>"
    );
    let connection = if close { "close" } else { "keep-alive" };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n\
         Content-Length: {}\r\nConnection: {connection}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Arms a reset: with SO_LINGER 0 the close() that follows sends RST, not FIN.
fn reset(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

fn record(
    shared: &Shared,
    head: &Head,
    fault: &Option<Fault>,
    forwarded: bool,
    status: Option<u16>,
) {
    lock(&shared.log).push(Exchange {
        started: head.seq,
        method: head.method_or_version.clone(),
        target: head.target().to_string(),
        fault: fault.clone(),
        forwarded,
        status,
        headers: head
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect(),
    });
}

fn serve_client(shared: &Shared, client: TcpStream) {
    let Ok(write_half) = client.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(64 * 1024, client);
    let mut writer = write_half;
    // One exchange per turn until the client closes or an exchange ends the connection.
    while let Ok(Some(mut head)) = read_request_head(&mut reader) {
        head.seq = shared.started.fetch_add(1, Ordering::SeqCst);
        let keep = serve_exchange(shared, &head, &mut reader, &mut writer).unwrap_or(false);
        if !keep {
            break;
        }
    }
}

/// Handles one request; `Ok(true)` when the client connection may be reused.
fn serve_exchange(
    shared: &Shared,
    head: &Head,
    reader: &mut BufReader<TcpStream>,
    client: &mut TcpStream,
) -> io::Result<bool> {
    let fault = lock(&shared.plan).pick(&head.method_or_version, head.target());
    let framing = head.request_framing()?;
    let expects_continue = head.has_token("expect", "100-continue");
    let client_closes = head.has_token("connection", "close");

    let canned = match &fault {
        Some(Fault::SlowDown) => Some((
            503,
            "Slow Down",
            "SlowDown",
            "Please reduce your request rate.",
        )),
        Some(Fault::InternalError) => Some((
            500,
            "Internal Server Error",
            "InternalError",
            "We encountered an internal error. Please try again.",
        )),
        Some(Fault::InvalidPart) => Some((
            400,
            "Bad Request",
            "InvalidPart",
            "One or more of the specified parts could not be found.",
        )),
        _ => None,
    };
    if let Some((status, reason, code, message)) = canned {
        record(shared, head, &fault, false, Some(status));
        // A client waiting for 100 Continue never sends the body: answer and close.
        if expects_continue {
            client.write_all(&s3_error(status, reason, code, message, true))?;
            return Ok(false);
        }
        relay_body(
            reader,
            &mut io::sink(),
            &framing,
            &BodyEffect::default(),
            &shared.closing,
        )?;
        client.write_all(&s3_error(status, reason, code, message, client_closes))?;
        return Ok(!client_closes);
    }
    if fault == Some(Fault::ResetBeforeForward) {
        record(shared, head, &fault, false, None);
        reset(client);
        return Ok(false);
    }
    if let Some(Fault::Stall(pause)) = &fault {
        pause_unless_closing(*pause, &shared.closing);
    }

    let upstream = match TcpStream::connect(("127.0.0.1", shared.upstream_port)) {
        Ok(s) => s,
        Err(_) => {
            record(shared, head, &fault, false, Some(502));
            client.write_all(&s3_error(
                502,
                "Bad Gateway",
                "BadGateway",
                "upstream down",
                true,
            ))?;
            return Ok(false);
        }
    };
    upstream.set_read_timeout(Some(UPSTREAM_TIMEOUT))?;
    let _ = upstream.set_nodelay(true);
    let mut up_writer = upstream.try_clone()?;
    let mut up_reader = BufReader::with_capacity(64 * 1024, upstream);
    // The proxy answers 100 Continue itself, so upstream sees a plain request.
    up_writer.write_all(&head.encode(&["expect"]))?;
    if expects_continue {
        client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let request_effect = BodyEffect {
        corrupt_at: match fault {
            Some(Fault::CorruptRequestByte(k)) => Some(k),
            _ => None,
        },
        ..BodyEffect::default()
    };
    relay_body(
        reader,
        &mut up_writer,
        &framing,
        &request_effect,
        &shared.closing,
    )?;
    up_writer.flush()?;

    let mut response = read_response_head(&mut up_reader)?;
    while response.status() / 100 == 1 {
        response = read_response_head(&mut up_reader)?;
    }
    let status = response.status();
    let resp_framing = response.response_framing(&head.method_or_version)?;

    if fault == Some(Fault::ResetAfterForward) {
        record(shared, head, &fault, true, None);
        let _ = relay_body(
            &mut up_reader,
            &mut io::sink(),
            &resp_framing,
            &BodyEffect::default(),
            &shared.closing,
        );
        reset(client);
        return Ok(false);
    }
    record(shared, head, &fault, true, Some(status));
    let effect = BodyEffect {
        truncate_at: match fault {
            Some(Fault::TruncateBody(k)) => Some(k),
            _ => None,
        },
        stall_at: match fault {
            Some(Fault::StallBody(k, d)) => Some((k, d)),
            _ => None,
        },
        corrupt_at: match fault {
            Some(Fault::CorruptByte(k)) => Some(k),
            _ => None,
        },
    };
    client.write_all(&response.encode(&[]))?;
    let complete = relay_body(
        &mut up_reader,
        client,
        &resp_framing,
        &effect,
        &shared.closing,
    )?;
    client.flush()?;
    let upstream_closes = response.has_token("connection", "close");
    let reusable = complete
        && !client_closes
        && !upstream_closes
        && !matches!(resp_framing, Framing::UntilClose);
    if !reusable {
        let _ = client.shutdown(Shutdown::Both);
    }
    Ok(reusable)
}
