//! WebSocket requests to the webserver front: the router accepts the browser's
//! WebSocket, asks the webserver control link for a `ws` connection carrying the
//! request's path (with query) and headers, and copies messages both ways with their
//! types. Close codes do not cross: either side ending closes the other with 1000.

use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use tungstenite::handshake::server::{Request, Response};
use tungstenite::{Error, Message, WebSocket};

use super::client::ClientLink;
use super::link::{self, LinkEnd, Msg, RecvError};
use super::wire::connection_request;
use super::{Connect, Kind, Shared};

/// Headers of the browser's request the router does not pass on.
const DROPPED: [&str; 5] = [
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
];

pub(super) fn serve(shared: &Arc<Shared>, stream: TcpStream, control: &ClientLink) {
    let mut target = String::new();
    let mut headers = Vec::new();
    // The callback's signature (a large `Err`) is tungstenite's.
    #[allow(clippy::result_large_err)]
    let capture = |req: &Request, resp: Response| {
        target = req
            .uri()
            .path_and_query()
            .map_or("/".to_string(), |p| p.as_str().to_string());
        for (name, value) in req.headers() {
            headers.push((
                name.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ));
        }
        Ok(resp)
    };
    let Ok(mut browser) = tungstenite::accept_hdr(stream, capture) else {
        return;
    };
    let cookie = headers
        .iter()
        .find(|(n, _)| n == "cookie")
        .map(|(_, v)| super::web::sticky_cookies(v))
        .unwrap_or_default();
    headers.retain(|(n, _)| !DROPPED.contains(&n.as_str()));
    let key = shared.connection_key();
    shared.lock().typed_keys.insert(key.clone());
    let connect = Connect::Ws {
        path: target,
        headers,
    };
    match connection_request(Kind::Webserver, &key, &cookie, &connect) {
        Msg::Text(t) => control.send_text(&t),
        Msg::Binary(b) => control.send_binary(&b),
    }
    let Some(backend) = shared.take(&key, shared.config.pair_timeout) else {
        let _ = browser.close(Some(tungstenite::protocol::CloseFrame {
            code: 4000.into(),
            reason: "Connection timed out waiting for backend".into(),
        }));
        let _ = browser.flush();
        return;
    };
    if browser.get_ref().set_read_timeout(Some(link::POLL)).is_ok() {
        relay(&mut browser, &backend);
    }
    backend.close();
}

fn relay(browser: &mut WebSocket<TcpStream>, backend: &ClientLink) {
    loop {
        loop {
            let sent = match backend.recv(Duration::ZERO) {
                Ok(Msg::Binary(b)) => browser.send(Message::binary(b)),
                Ok(Msg::Text(t)) => browser.send(Message::text(t)),
                Err(RecvError::Timeout) => break,
                Err(RecvError::Ended(LinkEnd::Closed { .. } | LinkEnd::Lost(_))) => {
                    let _ = browser.close(None);
                    let _ = browser.flush();
                    return;
                }
            };
            if sent.is_err() {
                return;
            }
        }
        match browser.read() {
            Ok(Message::Binary(b)) => backend.send_binary(&b),
            Ok(Message::Text(t)) => backend.send_text(t.as_str()),
            Ok(Message::Close(_)) => {
                // Sends the reply tungstenite queued.
                let _ = browser.flush();
                return;
            }
            Err(Error::ConnectionClosed) => return,
            Ok(_) => {}
            Err(Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}
