//! Backend links: ctrl's WebSocket dials, checked, recorded, maybe refused, then
//! registered for pairing and pumped (pump.rs).

use std::net::TcpStream;
use std::sync::{mpsc, Arc, PoisonError};

use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::http::StatusCode;
use tungstenite::{Error, HandshakeError};

use super::{link, pump, BackendDial, CopyMode, Kind, Shared};

/// One accepted backend connection: check the path, maybe refuse, then pump.
pub(super) fn serve_backend(shared: &Arc<Shared>, stream: TcpStream) {
    let mut dial: Option<BackendDial> = None;
    // The callback's signature (a large `Err`) is tungstenite's.
    #[allow(clippy::result_large_err)]
    let check = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let d = match parse_dial(shared, req) {
            Ok(d) => d,
            Err(why) => {
                shared.violation(why);
                return Err(refusal(404));
            }
        };
        let refused = {
            let st = shared.lock();
            st.refuse_keys.get(&d.key).copied().or(st.refuse_all)
        };
        let d = BackendDial { refused, ..d };
        shared.lock().dials.push(d.clone());
        shared.changed.notify_all();
        dial = Some(d);
        match refused {
            Some(status) => Err(refusal(status)),
            None => Ok(resp),
        }
    };
    let side = pump::ReadSide {
        stream,
        handshake_done: false,
    };
    let mut ws = match tungstenite::accept_hdr(side, check) {
        Ok(ws) => ws,
        Err(HandshakeError::Failure(Error::Http(_))) => return,
        Err(e) => {
            shared.violation(format!("backend WebSocket handshake failed: {e}"));
            return;
        }
    };
    let Some(dial) = dial else { return };
    ws.get_mut().handshake_done = true;
    if ws
        .get_ref()
        .stream
        .set_read_timeout(Some(link::POLL))
        .is_err()
    {
        return;
    }
    let (tx, rx) = mpsc::channel();
    let core = Arc::new(link::LinkCore::new(dial.clone(), tx));
    let pair_timeout = {
        let mut st = shared.lock();
        if dial.kind == Kind::Webserver {
            // The router keeps a webserver link for hours; nothing pairs with it.
            st.webservers.insert(dial.key.to_lowercase(), core.clone());
            None
        } else {
            if st.typed_keys.remove(&dial.key) {
                *core.mode.lock().unwrap_or_else(PoisonError::into_inner) = CopyMode::Typed;
            }
            if st.pending.insert(dial.key.clone(), core.clone()).is_some() {
                st.violations.push(format!(
                    "{}: a second backend link with the same key",
                    dial.describe()
                ));
            }
            Some(shared.config.pair_timeout)
        }
    };
    shared.changed.notify_all();
    pump::run(shared, &core, ws, rx, pair_timeout);
}

/// Splits `/api/router/{kind}/{workflow}/backend/{key}` and reads the headers.
fn parse_dial(shared: &Shared, req: &Request) -> Result<BackendDial, String> {
    let path = req.uri().path();
    let parts: Vec<&str> = path.split('/').collect();
    let (kind, workflow, key) = match parts.as_slice() {
        ["", "api", "router", kind, workflow, "backend", key]
            if !workflow.is_empty() && !key.is_empty() =>
        {
            (*kind, *workflow, *key)
        }
        _ => return Err(format!("backend dial to unknown path {path:?}")),
    };
    let kind =
        Kind::parse(kind).ok_or_else(|| format!("backend dial with unknown kind {path:?}"))?;
    let header = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    Ok(BackendDial {
        kind,
        workflow: workflow.to_string(),
        key: key.to_string(),
        auth: header(&shared.config.token_header),
        cookie: header("cookie"),
        refused: None,
    })
}

fn refusal(status: u16) -> ErrorResponse {
    let mut resp = ErrorResponse::new(Some(format!("refused with {status}")));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    resp
}
