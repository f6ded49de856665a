//! The token refresh endpoint: `POST /api/auth/jwt/refresh_token?workflow_id=..&
//! group_name=..&task_name=..&retry_id=..` with body `{"token": "<refresh token>"}`.

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::http_raw::{self, Head};
use super::{unix_now, Shared, REFRESH_PATH};

pub(super) fn handle(shared: &Shared, stream: &mut TcpStream, deadline: Instant) {
    shared.refresh_calls.fetch_add(1, Ordering::SeqCst);
    let (status, reason, body) = match read_and_check(shared, stream, deadline) {
        Ok(()) => answer(shared),
        Err(why) => {
            shared.violation(format!("token refresh refused: {why}"));
            (401, "Unauthorized", r#"{"error": "bad token"}"#.to_string())
        }
    };
    let _ = stream.write_all(&http_raw::http_response(status, reason, &body));
    http_raw::finish(stream);
}

/// Reads the request and checks everything ctrl must get right.
fn read_and_check(
    shared: &Shared,
    stream: &mut TcpStream,
    deadline: Instant,
) -> Result<(), String> {
    let (head, rest) = http_raw::read_head(stream, deadline).map_err(|e| e.to_string())?;
    let body = http_raw::read_body(stream, &head, rest, deadline).map_err(|e| e.to_string())?;
    if head.method != "POST" {
        return Err(format!("method {} instead of POST", head.method));
    }
    if head.path() != REFRESH_PATH {
        return Err(format!("path {:?}", head.path()));
    }
    check_query(shared, &head)?;
    let sent: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&body).map_err(|e| format!("body is not a JSON object ({e})"))?;
    match sent.get("token").and_then(|t| t.as_str()) {
        Some(t) if t == shared.config.refresh_token => Ok(()),
        Some(t) => Err(format!("wrong refresh token {t:?}")),
        None => Err("body has no \"token\" string".into()),
    }
}

fn check_query(shared: &Shared, head: &Head) -> Result<(), String> {
    let query = head.query()?;
    let c = &shared.config;
    let want = [
        ("workflow_id", &c.workflow),
        ("group_name", &c.group),
        ("task_name", &c.task),
        ("retry_id", &c.retry_id),
    ];
    for (name, value) in want {
        let got: Vec<&str> = query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect();
        if got != [value.as_str()] {
            return Err(format!("query {name}={got:?}, expected {value:?}"));
        }
    }
    Ok(())
}

/// Status, reason and body for a well-formed request.
fn answer(shared: &Shared) -> (u16, &'static str, String) {
    if shared.finished.load(Ordering::SeqCst) {
        return (400, "Bad Request", r#"{"error": "FINISHED"}"#.into());
    }
    let mut st = shared.lock();
    if st.pending_left > 0 {
        st.pending_left -= 1;
        return (400, "Bad Request", r#"{"error": "PENDING"}"#.into());
    }
    let jwt = format!("jwt-{}", st.issued.len() + 1);
    let expires_at = unix_now().saturating_add(shared.config.token_ttl_secs);
    st.issued.insert(jwt.clone(), expires_at);
    let body = serde_json::json!({"token": jwt, "expires_at": expires_at}).to_string();
    (200, "OK", body)
}
