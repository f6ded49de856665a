//! A canned-answer S3 stand-in for answers a real server never gives: malformed or
//! hostile listings, pagination that never ends, bodies shorter than declared, a 200
//! CompleteMultipartUpload that carries an `<Error>`. Signatures are not checked.
//! Routes match by method and target substring, first added first; anything else
//! gets a 404 `NoSuchKey`. Client connections are kept alive between answers.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::tcp_server::TcpServer;

/// One answer.
#[derive(Clone, Debug)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `Content-Length` to declare when it should differ from the body; the
    /// connection is closed after such an answer.
    pub declared_length: Option<usize>,
}

impl Canned {
    /// An XML answer.
    pub fn xml(status: u16, body: impl Into<Vec<u8>>) -> Canned {
        Canned {
            status,
            headers: vec![("Content-Type".into(), "application/xml".into())],
            body: body.into(),
            declared_length: None,
        }
    }

    /// A 200 GET answer declaring `declared` bytes but sending only `body`, then EOF.
    pub fn short_body(declared: usize, body: impl Into<Vec<u8>>) -> Canned {
        Canned {
            status: 200,
            headers: vec![("Content-Type".into(), "application/octet-stream".into())],
            body: body.into(),
            declared_length: Some(declared),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Canned {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// A ListObjectsV2 page of empty objects. Keys are written as given, only `&`, `<`,
    /// `>` escaped: control characters such as NUL go out raw, as a hostile server would
    /// send them.
    pub fn listing(keys: &[&str], truncated: bool, next_token: Option<&str>) -> Canned {
        let empty: Vec<Listed> = keys
            .iter()
            .map(|key| Listed {
                key,
                size: 0,
                etag: "d41d8cd98f00b204e9800998ecf8427e",
            })
            .collect();
        Canned::listing_of(&empty, truncated, next_token)
    }

    /// A ListObjectsV2 page of the given objects.
    pub fn listing_of(objects: &[Listed], truncated: bool, next_token: Option<&str>) -> Canned {
        let mut xml = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <Name>bkt</Name><Prefix></Prefix>",
        );
        xml.push_str(&format!(
            "<KeyCount>{}</KeyCount><MaxKeys>1000</MaxKeys>",
            objects.len()
        ));
        xml.push_str(&format!("<IsTruncated>{truncated}</IsTruncated>"));
        if let Some(token) = next_token {
            xml.push_str(&format!(
                "<NextContinuationToken>{}</NextContinuationToken>",
                escape(token)
            ));
        }
        for o in objects {
            xml.push_str(&format!(
                "<Contents><Key>{}</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified>\
                 <ETag>&quot;{}&quot;</ETag><Size>{}</Size>\
                 <StorageClass>STANDARD</StorageClass></Contents>",
                escape(o.key),
                o.etag,
                o.size
            ));
        }
        xml.push_str("</ListBucketResult>");
        Canned::xml(200, xml)
    }

    /// A 200 GET answer carrying a whole object.
    pub fn object(body: impl Into<Vec<u8>>, etag: &str) -> Canned {
        Canned {
            status: 200,
            headers: vec![
                ("Content-Type".into(), "application/octet-stream".into()),
                ("ETag".into(), format!("\"{etag}\"")),
            ],
            body: body.into(),
            declared_length: None,
        }
    }

    /// A listing whose XML breaks off inside an element.
    pub fn malformed_listing() -> Canned {
        Canned::xml(
            200,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult><Name>bkt</Name>\
             <Contents><Key>a</Key><Size>1</Si",
        )
    }

    /// A listing of keys that must never become local paths as they are.
    pub fn hostile_keys_listing() -> Canned {
        Canned::listing(&HOSTILE_KEYS, false, None)
    }

    /// `IsTruncated=true` with no continuation token.
    pub fn truncated_without_token() -> Canned {
        Canned::listing(&["a"], true, None)
    }

    /// `IsTruncated=true` and the same token on every page, forever.
    pub fn endless_pagination() -> Canned {
        Canned::listing(&["a"], true, Some("same-token"))
    }

    /// A 200 CompleteMultipartUpload answer whose body is an error (S3 does this when
    /// it fails after sending the status line).
    pub fn complete_with_error() -> Canned {
        Canned::xml(
            200,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code>\
             <Message>We encountered an internal error. Please try again.</Message>\
             <RequestId>fake-s3</RequestId></Error>",
        )
    }
}

/// One object in a [`Canned::listing_of`] page.
pub struct Listed<'a> {
    pub key: &'a str,
    pub size: u64,
    pub etag: &'a str,
}

/// The keys in [`Canned::hostile_keys_listing`].
pub const HOSTILE_KEYS: [&str; 4] = ["../escape", "/abs", "a/../../b", "nul\u{0}"];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

struct Route {
    method: String,
    target_contains: String,
    answer: Canned,
}

#[derive(Default)]
struct State {
    routes: Vec<Route>,
    requests: Vec<(String, String)>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub struct FakeS3 {
    pub port: u16,
    state: Arc<Mutex<State>>,
    _server: TcpServer,
}

impl FakeS3 {
    pub fn start() -> FakeS3 {
        let state = Arc::new(Mutex::new(State::default()));
        let server = {
            let state = state.clone();
            TcpServer::start(move |stream| serve(&state, stream))
        };
        FakeS3 {
            port: server.port(),
            state,
            _server: server,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Answers requests with this method whose target contains `target_contains`.
    pub fn route(&self, method: &str, target_contains: &str, answer: Canned) {
        lock(&self.state).routes.push(Route {
            method: method.into(),
            target_contains: target_contains.into(),
            answer,
        });
    }

    /// Method and target of every request so far.
    pub fn requests(&self) -> Vec<(String, String)> {
        lock(&self.state).requests.clone()
    }
}

fn not_found() -> Canned {
    Canned::xml(
        404,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>\
         <Message>no route in the fake</Message></Error>",
    )
}

fn serve(state: &Mutex<State>, stream: TcpStream) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Ok(Some(Request {
        method,
        target,
        body_len,
        expects_continue,
        closes,
    })) = read_request(&mut reader)
    {
        if expects_continue && writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err() {
            return;
        }
        // Uploads are read and dropped.
        if io::copy(&mut reader.by_ref().take(body_len), &mut io::sink()).ok() != Some(body_len) {
            return;
        }
        let answer = {
            let mut s = lock(state);
            s.requests.push((method.clone(), target.clone()));
            s.routes
                .iter()
                .find(|r| r.method == method && target.contains(&r.target_contains))
                .map_or_else(not_found, |r| r.answer.clone())
        };
        let head_only = method == "HEAD";
        if write_answer(&mut writer, &answer, head_only).is_err()
            || answer.declared_length.is_some()
            || closes
        {
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
    }
}

struct Request {
    method: String,
    target: String,
    body_len: u64,
    expects_continue: bool,
    closes: bool,
}

/// The next request head; `None` at clean EOF.
fn read_request(r: &mut impl BufRead) -> io::Result<Option<Request>> {
    let mut raw = Vec::new();
    while !raw.ends_with(b"\r\n\r\n") {
        let n = r.by_ref().take(64 * 1024).read_until(b'\n', &mut raw)?;
        if n == 0 {
            return Ok(None);
        }
        if raw.len() > 64 * 1024 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(req.parse(&raw), Ok(httparse::Status::Complete(_))) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad request head",
        ));
    }
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    };
    Ok(Some(Request {
        method: req.method.unwrap_or_default().to_string(),
        target: req.path.unwrap_or_default().to_string(),
        body_len: header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        expects_continue: header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")),
        closes: header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")),
    }))
}

fn write_answer(w: &mut TcpStream, answer: &Canned, head_only: bool) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} Canned\r\n", answer.status);
    for (name, value) in &answer.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let length = answer.declared_length.unwrap_or(answer.body.len());
    head.push_str(&format!("Content-Length: {length}\r\n\r\n"));
    w.write_all(head.as_bytes())?;
    if !head_only {
        w.write_all(&answer.body)?;
    }
    w.flush()
}
