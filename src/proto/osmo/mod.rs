//! Messages on the link between ctrl and the OSMO service (PROTOCOL §3).
//!
//! Ctrl sends TEXT frames whose payload is a JSON *string* holding a JSON object
//! (double encoding): the service decodes the frame as JSON, then decodes the string
//! again. The encoders here write that payload directly. Service frames are plain JSON
//! objects naming an `action`; [`parse_action`] reads them.

use std::time::SystemTime;

use super::timefmt::{metric_time, rfc3339_nanos};

mod action;
pub(crate) mod json;

pub use action::{parse_action, Action, ActionError, Session};
pub use json::replace_invalid_utf8;

#[cfg(test)]
mod tests;

/// The `IOType` of a message to the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IoType {
    Stdout,
    Stderr,
    OsmoCtrl,
    Download,
    Upload,
    LogDone,
    Barrier,
    Metrics,
}

impl IoType {
    /// The wire name, e.g. `STDOUT`.
    pub fn as_str(self) -> &'static str {
        match self {
            IoType::Stdout => "STDOUT",
            IoType::Stderr => "STDERR",
            IoType::OsmoCtrl => "OSMO_CTRL",
            IoType::Download => "DOWNLOAD",
            IoType::Upload => "UPLOAD",
            IoType::LogDone => "LOG_DONE",
            IoType::Barrier => "BARRIER",
            IoType::Metrics => "METRICS",
        }
    }
}

/// Appends the TEXT frame payload for one log line:
/// `{"Source":..,"Time":..,"Text":..,"IOType":..}` as a JSON string. The log-done
/// message is a log line with empty `text` and [`IoType::LogDone`].
///
/// This is the per-line hot path, so the doubly escaped text is written in one pass.
/// Bytes equal `serde_json` encoding the object and then the resulting string.
pub fn encode_log(out: &mut Vec<u8>, source: &str, time: SystemTime, text: &str, io: IoType) {
    out.reserve(source.len() + text.len() + 96);
    out.extend_from_slice(br#""{\"Source\":\""#);
    json::escape_twice(out, source.as_bytes());
    out.extend_from_slice(br#"\",\"Time\":\""#);
    rfc3339_nanos(out, time);
    out.extend_from_slice(br#"\",\"Text\":\""#);
    json::escape_twice(out, text.as_bytes());
    out.extend_from_slice(br#"\",\"IOType\":\""#);
    out.extend_from_slice(io.as_str().as_bytes());
    out.extend_from_slice(br#"\"}""#);
}

/// Appends the payload asking the service to join barrier `name`:
/// `{"Name":..,"Count":-1,"IOType":"BARRIER"}` (count -1: the whole group).
pub fn encode_barrier(out: &mut Vec<u8>, name: &str) {
    let mut obj = Object::new();
    obj.str("Name", name);
    obj.raw("Count", "-1");
    obj.str("IOType", IoType::Barrier.as_str());
    obj.finish_as_string(out);
}

/// Which phase a [`GroupMetric`] times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupMetricKind {
    InputDownload,
    OutputUpload,
}

impl GroupMetricKind {
    /// The wire name (`type_of_metrics`).
    pub fn as_str(self) -> &'static str {
        match self {
            GroupMetricKind::InputDownload => "input_download",
            GroupMetricKind::OutputUpload => "output_upload",
        }
    }
}

/// How long the task's whole input or output phase took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMetric {
    pub retry_id: String,
    pub start_time: SystemTime,
    pub end_time: SystemTime,
    pub kind: GroupMetricKind,
}

/// One transfer (or one port-forward direction) of a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskIoMetric {
    pub retry_id: String,
    pub group_name: String,
    pub task_name: String,
    /// The data URL; empty for port-forward telemetry.
    pub url: String,
    /// Wire key `type`: `INPUT`, `OUTPUT`, or `<ACTION>_INPUT` / `<ACTION>_OUTPUT`.
    pub io_type: String,
    pub start_time: SystemTime,
    pub end_time: SystemTime,
    pub size_in_bytes: u64,
    pub number_of_files: u64,
    /// `Url` for data transfers; empty for port-forward telemetry.
    pub operation_type: String,
    /// `download` for inputs, `N/A` otherwise.
    pub download_type: String,
}

/// Appends the METRICS payload for a [`GroupMetric`] (`MetricType` `group_metrics`).
pub fn encode_group_metric(out: &mut Vec<u8>, source: &str, time: SystemTime, m: &GroupMetric) {
    let mut metric = Object::new();
    metric.str("retry_id", &m.retry_id);
    metric.str("start_time", &metric_time(m.start_time));
    metric.str("end_time", &metric_time(m.end_time));
    metric.str("type_of_metrics", m.kind.as_str());
    encode_metric(out, source, time, metric, "group_metrics");
}

/// Appends the METRICS payload for a [`TaskIoMetric`] (`MetricType` `task_io_metrics`).
pub fn encode_task_io_metric(out: &mut Vec<u8>, source: &str, time: SystemTime, m: &TaskIoMetric) {
    let mut metric = Object::new();
    metric.str("retry_id", &m.retry_id);
    metric.str("group_name", &m.group_name);
    metric.str("task_name", &m.task_name);
    metric.str("url", &m.url);
    metric.str("type", &m.io_type);
    metric.str("start_time", &metric_time(m.start_time));
    metric.str("end_time", &metric_time(m.end_time));
    metric.raw("size_in_bytes", m.size_in_bytes.to_string());
    metric.raw("number_of_files", m.number_of_files.to_string());
    metric.str("operation_type", &m.operation_type);
    metric.str("download_type", &m.download_type);
    encode_metric(out, source, time, metric, "task_io_metrics");
}

/// `{"Source","Time","Metric","IOType":"METRICS","MetricType"}` as a JSON string.
fn encode_metric(out: &mut Vec<u8>, source: &str, time: SystemTime, metric: Object, kind: &str) {
    let mut stamp = Vec::with_capacity(32);
    rfc3339_nanos(&mut stamp, time);
    let mut obj = Object::new();
    obj.str("Source", source);
    obj.str_bytes("Time", &stamp);
    obj.raw("Metric", metric.finish_str());
    obj.str("IOType", IoType::Metrics.as_str());
    obj.str("MetricType", kind);
    obj.finish_as_string(out);
}

/// Compact JSON object writer for the rare (non-log) messages.
struct Object(Vec<u8>);

impl Object {
    fn new() -> Object {
        Object(b"{".to_vec())
    }

    fn key(&mut self, key: &str) {
        if self.0.len() > 1 {
            self.0.push(b',');
        }
        self.0.push(b'"');
        self.0.extend_from_slice(key.as_bytes());
        self.0.extend_from_slice(b"\":");
    }

    fn str(&mut self, key: &str, value: &str) {
        self.str_bytes(key, value.as_bytes());
    }

    /// `value` must be UTF-8.
    fn str_bytes(&mut self, key: &str, value: &[u8]) {
        self.key(key);
        self.0.push(b'"');
        json::escape(&mut self.0, value);
        self.0.push(b'"');
    }

    /// `value` must be JSON text.
    fn raw(&mut self, key: &str, value: impl AsRef<[u8]>) {
        self.key(key);
        self.0.extend_from_slice(value.as_ref());
    }

    fn finish_str(mut self) -> Vec<u8> {
        self.0.push(b'}');
        self.0
    }

    /// Appends the object as a JSON string (the service link's double encoding).
    fn finish_as_string(self, out: &mut Vec<u8>) {
        let inner = self.finish_str();
        out.push(b'"');
        json::escape(out, &inner);
        out.push(b'"');
    }
}

/// Decodes a payload ctrl sends the service, strictly: it must be a JSON string whose
/// content is a JSON object. This is the service's side of the double encoding, for
/// tests and fake services.
pub fn decode_service_message(
    payload: &[u8],
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let text: String = serde_json::from_slice(payload)
        .map_err(|e| format!("service message is not a JSON string: {e}"))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("service message string does not hold a JSON object: {e}"))
}
