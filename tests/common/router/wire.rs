//! What travels on links besides raw bytes: the connection requests sent on control
//! links, and the UDP link's frames.

use std::net::SocketAddrV4;

use super::{Connect, Kind, Msg};

/// The control message for a new connection, framed as its sender frames it:
/// on webserver control links the router's (TEXT, compact), on the others the
/// CLI's (BINARY, Python's default separators, no `type` for TCP). The CLI never
/// asks for `ws`; on those links a `ws` request is still written the CLI's way.
pub(super) fn connection_request(control: Kind, key: &str, cookie: &str, connect: &Connect) -> Msg {
    let cli = control != Kind::Webserver;
    let (colon, comma) = if cli { (": ", ", ") } else { (":", ",") };
    let mut fields = vec![
        format!("\"key\"{colon}{}", json_str(key)),
        format!("\"cookie\"{colon}{}", json_str(cookie)),
    ];
    match connect {
        Connect::Tcp if cli => {}
        Connect::Tcp => fields.push(format!("\"type\"{colon}\"tcp\"")),
        Connect::Ws { path, headers } => {
            let headers: Vec<String> = headers
                .iter()
                .map(|(k, v)| format!("{}{colon}{}", json_str(k), json_str(v)))
                .collect();
            fields.push(format!("\"type\"{colon}\"ws\""));
            fields.push(format!(
                "\"payload\"{colon}{{\"path\"{colon}{}{comma}\"headers\"{colon}{{{}}}}}",
                json_str(path),
                headers.join(comma)
            ));
        }
    }
    let text = format!("{{{}}}", fields.join(comma));
    if cli {
        Msg::Binary(text.into_bytes())
    } else {
        Msg::Text(text)
    }
}

/// A JSON string literal.
pub(super) fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// A UDP link frame: IPv4 address and port (big-endian), then the datagram.
pub fn encode_udp_frame(from: SocketAddrV4, datagram: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(6 + datagram.len());
    out.extend_from_slice(&from.ip().octets());
    out.extend_from_slice(&from.port().to_be_bytes());
    out.extend_from_slice(datagram);
    out
}

/// Splits a UDP link frame; `None` when it is shorter than its 6-byte header.
pub fn decode_udp_frame(frame: &[u8]) -> Option<(SocketAddrV4, &[u8])> {
    let (head, datagram) = frame.split_first_chunk::<6>()?;
    let [a, b, c, d, p0, p1] = *head;
    let addr = SocketAddrV4::new([a, b, c, d].into(), u16::from_be_bytes([p0, p1]));
    Some((addr, datagram))
}
