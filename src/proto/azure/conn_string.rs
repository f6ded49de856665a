//! Azure Storage connection strings (`Key=Value;Key=Value`), the form a profile's
//! `access_key` takes for `azure://` stores:
//!
//! - `DefaultEndpointsProtocol=https;AccountName=NAME;AccountKey=BASE64;EndpointSuffix=core.windows.net`
//! - `BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;AccountName=...;AccountKey=...`
//!   (an emulator, or a custom domain)
//! - `BlobEndpoint=https://NAME.blob.core.windows.net;SharedAccessSignature=sv=...&sig=...`
//! - `UseDevelopmentStorage=true` (Azurite's well-known account on 127.0.0.1:10000)
//!
//! Keys are matched without regard to case, values may hold `=`, empty segments are
//! skipped, and keys for other services (`QueueEndpoint`, ...) are ignored. Errors never
//! repeat the account key or the signature.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// Longest connection string read (real ones are a few hundred bytes; a SAS a few more).
pub const MAX_LEN: usize = 8 * 1024;

/// Azurite's well-known development account.
const DEV_ACCOUNT: &str = "devstoreaccount1";
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Where the Blob service of an account answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobEndpoint {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// A path before the container (`/devstoreaccount1` on an emulator), without a
    /// trailing slash; empty on Azure itself.
    pub path: String,
}

/// How requests prove their right.
#[derive(Clone, PartialEq, Eq)]
pub enum AzureAuth {
    /// Shared Key: the decoded account key signs each request.
    SharedKey(Vec<u8>),
    /// A shared access signature: its query string goes on every request.
    Sas(String),
}

impl fmt::Debug for AzureAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AzureAuth::SharedKey(_) => "SharedKey(..)",
            AzureAuth::Sas(_) => "Sas(..)",
        })
    }
}

/// A storage account as a connection string describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AzureAccount {
    pub name: String,
    pub endpoint: BlobEndpoint,
    pub auth: AzureAuth,
}

/// Why a connection string was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnStringError {
    TooLong {
        len: usize,
    },
    /// Segment `index` (from 1) has no `=`.
    NoEquals {
        index: usize,
    },
    BadProtocol(String),
    /// The account key is not base64 (the key itself is not repeated).
    BadAccountKey,
    BadEndpoint {
        endpoint: String,
        why: &'static str,
    },
    /// Neither `AccountName` nor the store URL names the account.
    NoAccount,
    /// Neither `AccountKey` nor `SharedAccessSignature`.
    NoCredential,
    /// The connection string is for another account than the store URL's.
    OtherAccount {
        url: String,
        string: String,
    },
}

impl fmt::Display for ConnStringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnStringError::TooLong { len } => {
                write!(
                    f,
                    "the connection string is {len} bytes (the limit is {MAX_LEN})"
                )
            }
            ConnStringError::NoEquals { index } => {
                write!(f, "part {index} of the connection string is not Key=Value")
            }
            ConnStringError::BadProtocol(p) => write!(
                f,
                "DefaultEndpointsProtocol is {p:?}; it must be http or https"
            ),
            ConnStringError::BadAccountKey => f.write_str("AccountKey is not base64"),
            ConnStringError::BadEndpoint { endpoint, why } => {
                write!(f, "BlobEndpoint {endpoint:?} {why}")
            }
            ConnStringError::NoAccount => f.write_str("the connection string names no AccountName"),
            ConnStringError::NoCredential => f.write_str(
                "the connection string has neither an AccountKey nor a SharedAccessSignature",
            ),
            ConnStringError::OtherAccount { url, string } => write!(
                f,
                "the connection string is for account {string:?}, the URL names {url:?}"
            ),
        }
    }
}

impl std::error::Error for ConnStringError {}

/// Reads connection string `text` for the account `url_account` (from `azure://ACCOUNT/...`).
pub fn parse_conn_string(text: &str, url_account: &str) -> Result<AzureAccount, ConnStringError> {
    if text.len() > MAX_LEN {
        return Err(ConnStringError::TooLong { len: text.len() });
    }
    let mut fields = Fields::default();
    for (i, segment) in text.split(';').enumerate() {
        let segment = segment.trim();
        if segment.is_empty() {
            continue;
        }
        let (key, value) = segment
            .split_once('=')
            .ok_or(ConnStringError::NoEquals { index: i + 1 })?;
        let value = value.trim().to_string();
        let slot = match key.trim().to_ascii_lowercase().as_str() {
            "defaultendpointsprotocol" => &mut fields.protocol,
            "accountname" => &mut fields.account,
            "accountkey" => &mut fields.key,
            "endpointsuffix" => &mut fields.suffix,
            "blobendpoint" => &mut fields.blob_endpoint,
            "sharedaccesssignature" => &mut fields.sas,
            "usedevelopmentstorage" => &mut fields.development,
            _ => continue,
        };
        *slot = Some(value);
    }
    if fields
        .development
        .as_deref()
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        fields.account.get_or_insert_with(|| DEV_ACCOUNT.into());
        fields.key.get_or_insert_with(|| DEV_KEY.into());
        fields
            .blob_endpoint
            .get_or_insert_with(|| format!("http://127.0.0.1:10000/{DEV_ACCOUNT}"));
    }
    let name = match (fields.account, url_account) {
        (Some(named), url) if !url.is_empty() && named != url => {
            return Err(ConnStringError::OtherAccount {
                url: url.to_string(),
                string: named,
            })
        }
        (Some(named), _) => named,
        (None, url) if !url.is_empty() => url.to_string(),
        (None, _) => return Err(ConnStringError::NoAccount),
    };
    let auth = match (fields.key, fields.sas) {
        (Some(key), _) => AzureAuth::SharedKey(
            STANDARD
                .decode(key)
                .ok()
                .filter(|k| !k.is_empty())
                .ok_or(ConnStringError::BadAccountKey)?,
        ),
        (None, Some(sas)) => AzureAuth::Sas(sas.trim_start_matches('?').to_string()),
        (None, None) => return Err(ConnStringError::NoCredential),
    };
    let endpoint = match fields.blob_endpoint {
        Some(url) => parse_endpoint(&url)?,
        None => {
            let tls = match fields.protocol.as_deref() {
                None => true,
                Some(p) if p.eq_ignore_ascii_case("https") => true,
                Some(p) if p.eq_ignore_ascii_case("http") => false,
                Some(p) => return Err(ConnStringError::BadProtocol(p.to_string())),
            };
            let suffix = fields.suffix.as_deref().unwrap_or("core.windows.net");
            BlobEndpoint {
                tls,
                host: format!("{name}.blob.{suffix}"),
                port: if tls { 443 } else { 80 },
                path: String::new(),
            }
        }
    };
    Ok(AzureAccount {
        name,
        endpoint,
        auth,
    })
}

#[derive(Default)]
struct Fields {
    protocol: Option<String>,
    account: Option<String>,
    key: Option<String>,
    suffix: Option<String>,
    blob_endpoint: Option<String>,
    sas: Option<String>,
    development: Option<String>,
}

/// `http[s]://host[:port][/path]`, as `BlobEndpoint` gives it.
fn parse_endpoint(url: &str) -> Result<BlobEndpoint, ConnStringError> {
    // Never the query: a SAS URL pasted as the endpoint would put its signature in the
    // error.
    let bad = |why| ConnStringError::BadEndpoint {
        endpoint: url
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .chars()
            .take(128)
            .collect(),
        why,
    };
    let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(bad("is not an http:// or https:// URL"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if path.contains(['?', '#']) {
        return Err(bad("has a query or fragment"));
    }
    // `[v6]:port`, `[v6]`, `host:port` or `host`.
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| bad("has an unclosed [ in its host"))?;
            let port = match after {
                "" => None,
                after => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| bad("has text after its [host]"))?,
                ),
            };
            (host, port)
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| bad("has a port that is not 1-65535"))?,
        None => {
            if tls {
                443
            } else {
                80
            }
        }
    };
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
    {
        return Err(bad("has no valid host"));
    }
    Ok(BlobEndpoint {
        tls,
        host: host.to_string(),
        port,
        path: path.trim_end_matches('/').to_string(),
    })
}
