//! Decoding off the socket threads: a connection thread hands raw TEXT payloads over in
//! numbered batches, a few workers decode them in parallel, and results are published
//! strictly in batch order, so `messages()` keeps arrival order. This keeps the
//! service ahead of a ctrl pushing about a million lines a second.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

use serde_json::{Map, Value};
use tungstenite::Utf8Bytes;

use super::{ServiceConfig, Shared, State};

/// One received data frame, or a violation seen by the connection thread.
pub(super) enum Item {
    /// A TEXT payload (it shares tungstenite's read buffer: no copy) and its number.
    Text(Utf8Bytes, usize),
    /// A BINARY frame's length and its number.
    Binary(usize, usize),
    Violation(String),
}

/// What a connection and the workers share.
pub(super) struct Link {
    /// Connection number, 1-based.
    pub number: usize,
    /// LOG_DONE objects published but not answered yet.
    pub log_done_due: AtomicUsize,
}

pub(super) struct Batch {
    pub seq: u64,
    pub link: Arc<Link>,
    pub items: Vec<Item>,
}

/// A decoded batch waiting for its turn to be published.
pub(super) struct Decoded {
    link: Arc<Link>,
    kept: Vec<Map<String, Value>>,
    count: usize,
    logs: usize,
    log_dones: usize,
    violations: Vec<String>,
}

/// Starts the workers; they stop once every sender is gone.
pub(super) fn start_workers(shared: &Arc<Shared>) -> (SyncSender<Batch>, Vec<JoinHandle<()>>) {
    let n = thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 5) - 1);
    let (tx, rx) = mpsc::sync_channel(4 * n);
    let rx = Arc::new(Mutex::new(rx));
    let workers = (0..n)
        .map(|_| {
            let (shared, rx) = (shared.clone(), rx.clone());
            thread::spawn(move || work(&shared, &rx))
        })
        .collect();
    (tx, workers)
}

fn work(shared: &Shared, rx: &Mutex<Receiver<Batch>>) {
    loop {
        let next = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(batch) = next else { return };
        let seq = batch.seq;
        let decoded = decode_batch(&shared.config, batch);
        let mut st = shared.lock();
        st.reorder.insert(seq, decoded);
        loop {
            let next = st.published;
            let Some(d) = st.reorder.remove(&next) else {
                break;
            };
            st.published += 1;
            apply(&mut st, d);
        }
        drop(st);
        shared.changed.notify_all();
    }
}

fn decode_batch(config: &ServiceConfig, batch: Batch) -> Decoded {
    let mut d = Decoded {
        link: batch.link,
        kept: Vec::with_capacity(batch.items.len()),
        count: 0,
        logs: 0,
        log_dones: 0,
        violations: Vec::new(),
    };
    let number = d.link.number;
    for item in batch.items {
        match item {
            Item::Text(text, n) => match decode(&text) {
                Ok(obj) => {
                    d.count += 1;
                    let io = io_type(&obj);
                    let log = matches!(io, Some("STDOUT" | "STDERR"));
                    d.logs += usize::from(log);
                    d.log_dones += usize::from(io == Some("LOG_DONE"));
                    if !log || config.keep_logs {
                        d.kept.push(obj);
                    }
                }
                Err(why) => d
                    .violations
                    .push(format!("connection {number}: message {n}: {why}")),
            },
            Item::Binary(len, n) => d.violations.push(format!(
                "connection {number}: message {n}: BINARY frame of {len} bytes; ctrl must send TEXT"
            )),
            Item::Violation(v) => d.violations.push(format!("connection {number}: {v}")),
        }
    }
    if !config.reply_log_done {
        d.log_dones = 0;
    }
    d
}

/// Makes a batch visible, then asks its connection to answer LOG_DONE (in this order,
/// so the object is recorded before ctrl can see the reply).
fn apply(st: &mut State, d: Decoded) {
    st.message_conns
        .extend(std::iter::repeat_n(d.link.number, d.kept.len()));
    st.messages.extend(d.kept);
    st.decoded += d.count;
    st.log_lines += d.logs;
    st.violations.extend(d.violations);
    if d.log_dones > 0 {
        d.link
            .log_done_due
            .fetch_add(d.log_dones, Ordering::Release);
    }
}

/// Batches decoded ahead of their turn, by sequence number.
pub(super) type Reorder = BTreeMap<u64, Decoded>;

/// The payload must be a JSON string holding a JSON object (double encoding).
pub(super) fn decode(text: &str) -> Result<Map<String, Value>, String> {
    let inner: String = serde_json::from_str(text).map_err(|e| {
        format!(
            "TEXT payload is not a JSON string ({e}); ctrl must double-encode: {}",
            preview(text)
        )
    })?;
    serde_json::from_str(&inner).map_err(|e| {
        format!(
            "JSON string does not hold a JSON object ({e}): {}",
            preview(&inner)
        )
    })
}

/// `IOType`, with the key matched case-insensitively as the service lower-cases keys.
fn io_type(obj: &Map<String, Value>) -> Option<&str> {
    obj.get("IOType")
        .or_else(|| {
            obj.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("iotype"))
                .map(|(_, v)| v)
        })
        .and_then(Value::as_str)
}

/// At most 200 characters of `s`, for violation messages.
fn preview(s: &str) -> String {
    let cut: String = s.chars().take(200).collect();
    if cut.len() < s.len() {
        format!("{cut:?}...")
    } else {
        format!("{cut:?}")
    }
}
