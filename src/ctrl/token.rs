//! The JWT refresh exchange of PROTOCOL.md §3, sans-IO: the request bytes and the
//! meaning of the answer.

use serde::Deserialize;

use crate::proto::http::{self, Body, Response};

/// What the refresh endpoint said.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenAnswer {
    /// A token valid until `expires_at` (Unix seconds).
    Token { jwt: String, expires_at: u64 },
    /// The task is not RUNNING yet: keep waiting quietly.
    Pending,
    /// The task is over: no token will come.
    Finished,
    /// Anything else, with a reason worth logging.
    Error(String),
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    expires_at: Option<u64>,
    #[serde(default)]
    error: Option<String>,
}

/// Builds the POST: JSON body `{"token": <refresh token file contents>}`.
pub fn request(host: &str, target: &str, refresh_token: &str) -> Result<Vec<u8>, String> {
    let body = serde_json::json!({ "token": refresh_token }).to_string();
    let mut out = Vec::with_capacity(256 + body.len());
    http::write_request(
        &mut out,
        "POST",
        target,
        host,
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
            ("Connection", "close"),
        ],
        Body::Bytes(body.as_bytes()),
    )
    .map_err(|e| format!("token refresh request: {e}"))?;
    Ok(out)
}

/// Interprets an answer. The body is JSON whatever the status; the error values
/// PENDING and FINISHED have their own meaning.
pub fn parse(response: &Response) -> TokenAnswer {
    let status = response.head.status;
    let answer: Option<Answer> = serde_json::from_slice(&response.body).ok();
    match (status, answer) {
        (
            200,
            Some(Answer {
                token: Some(jwt),
                expires_at: Some(expires_at),
                ..
            }),
        ) if !jwt.is_empty() => TokenAnswer::Token { jwt, expires_at },
        (200, _) => {
            TokenAnswer::Error("token refresh answered 200 without a token and expires_at".into())
        }
        (_, Some(Answer { error: Some(e), .. })) if e == "PENDING" => TokenAnswer::Pending,
        (_, Some(Answer { error: Some(e), .. })) if e == "FINISHED" => TokenAnswer::Finished,
        (_, Some(Answer { error: Some(e), .. })) => {
            TokenAnswer::Error(format!("token refresh failed ({status}): {e}"))
        }
        (_, _) => TokenAnswer::Error(format!("token refresh failed with status {status}")),
    }
}

/// The auth header value: `Bearer <jwt>` for the Authorization header, raw otherwise.
pub fn header_value(header: &str, jwt: &str) -> String {
    if header.eq_ignore_ascii_case("authorization") {
        format!("Bearer {jwt}")
    } else {
        jwt.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::http::ResponseHead;

    fn response(status: u16, body: &str) -> Response {
        Response {
            head: ResponseHead {
                status,
                reason: String::new(),
                headers: Vec::new(),
            },
            body: body.as_bytes().to_vec(),
            keep_alive: false,
        }
    }

    #[test]
    fn answers_are_classified() {
        assert_eq!(
            parse(&response(200, r#"{"token":"abc","expires_at":17}"#)),
            TokenAnswer::Token {
                jwt: "abc".into(),
                expires_at: 17
            }
        );
        assert_eq!(
            parse(&response(400, r#"{"error":"PENDING"}"#)),
            TokenAnswer::Pending
        );
        assert_eq!(
            parse(&response(403, r#"{"error":"FINISHED"}"#)),
            TokenAnswer::Finished
        );
        assert!(
            matches!(parse(&response(500, "oops")), TokenAnswer::Error(e) if e.contains("500"))
        );
        assert!(matches!(parse(&response(200, "{}")), TokenAnswer::Error(_)));
    }

    #[test]
    fn header_value_uses_bearer_only_for_authorization() {
        assert_eq!(header_value("authorization", "t"), "Bearer t");
        assert_eq!(header_value("x-osmo-auth", "t"), "t");
    }

    #[test]
    fn request_carries_the_token_as_json() {
        let req = String::from_utf8(
            request("svc:8000", "/api/auth/jwt/refresh_token?x=1", "se\"cret\n").unwrap(),
        )
        .unwrap();
        assert!(
            req.starts_with("POST /api/auth/jwt/refresh_token?x=1 HTTP/1.1\r\nHost: svc:8000\r\n")
        );
        assert!(req.ends_with(r#"{"token":"se\"cret\n"}"#));
    }
}
