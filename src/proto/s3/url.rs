//! Store URLs (PROTOCOL.md §6) and where their requests go.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use super::{Addressing, BucketTarget};

/// A data location from a spec, split into its parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    /// `s3://bucket/prefix`: AWS, or any S3-compatible endpoint.
    S3 { bucket: String, prefix: String },
    /// `gs://bucket/prefix`: Google Cloud Storage through its S3 interop.
    Gs { bucket: String, prefix: String },
    /// `tos://host/bucket/prefix`: Volcengine TOS, virtual-host only.
    Tos {
        host: String,
        bucket: String,
        prefix: String,
    },
    /// `swift://host/AUTH_ns/container/prefix`: OpenStack Swift through its S3 API; the
    /// container is the bucket.
    Swift {
        host: String,
        account: String,
        container: String,
        prefix: String,
    },
    /// `azure://account/container/prefix`: Azure Blob storage, through its own REST API
    /// (not S3's).
    Azure {
        account: String,
        container: String,
        prefix: String,
    },
    /// `file:///abs/path` or `/abs/path`.
    File { path: PathBuf },
}

impl StoreUrl {
    /// The name credential profiles are stored under: `s3://bucket`,
    /// `gs://bucket`, `tos://host/bucket`, `swift://host/AUTH_ns`, `azure://account`,
    /// `file://` (files need none).
    pub fn profile_key(&self) -> String {
        match self {
            StoreUrl::S3 { bucket, .. } => format!("s3://{bucket}"),
            StoreUrl::Gs { bucket, .. } => format!("gs://{bucket}"),
            StoreUrl::Tos { host, bucket, .. } => format!("tos://{host}/{bucket}"),
            StoreUrl::Swift { host, account, .. } => format!("swift://{host}/{account}"),
            StoreUrl::Azure { account, .. } => format!("azure://{account}"),
            StoreUrl::File { .. } => "file://".to_string(),
        }
    }
}

/// How to place the bucket name, as configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressingStyle {
    /// Virtual-host where the name allows it, else path (see [`resolve_target`]).
    Auto,
    Path,
    Virtual,
}

/// Why a store URL, endpoint or setting was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UrlError {
    /// A scheme this build does not transfer from (azure, http, ...).
    Unsupported {
        scheme: String,
    },
    /// No `scheme://` and not an absolute path.
    NotAUrl {
        url: String,
    },
    EmptyBucket {
        url: String,
    },
    BadBucket {
        bucket: String,
        what: String,
    },
    EmptyHost {
        url: String,
    },
    /// A `swift://` URL without its `AUTH_ns` account, or with one that is not a name.
    BadAccount {
        url: String,
    },
    /// An `azure://` storage account name that is not 3-24 lower-case letters and digits.
    BadAzureAccount {
        account: String,
    },
    /// An `azure://` container name that is not 3-63 lower-case letters, digits and
    /// single hyphens, starting and ending with a letter or digit.
    BadContainer {
        container: String,
    },
    BadHost {
        host: String,
    },
    /// `file://` with a host or a relative path.
    BadFileUrl {
        url: String,
    },
    /// The endpoint override is not `http(s)://host[:port][/]`; the value
    /// is not repeated since it may hold user info.
    BadEndpoint {
        what: &'static str,
    },
    /// A local path was passed where an object store is needed.
    NotAnObjectStore,
    /// An Azure URL was passed where a store of the S3 API is needed.
    NotS3Api,
    /// The region is empty after trimming or holds characters other than
    /// letters, digits, `-`, `_` and `.` (it goes into host names and the
    /// signature scope).
    BadRegion {
        region: String,
    },
    /// No region was given and none can be read from the host.
    RegionRequired {
        host: String,
    },
    /// An addressing-style setting holds an unknown value.
    BadAddressingStyle {
        setting: &'static str,
        value: String,
    },
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::Unsupported { scheme } => {
                write!(f, "storage scheme {scheme:?} is not supported")
            }
            UrlError::NotAUrl { url } => write!(
                f,
                "{url:?} is not a store URL (s3://, gs://, tos://, swift://, azure://, file:// or an absolute path)"
            ),
            UrlError::EmptyBucket { url } => write!(f, "store URL {url:?} has no bucket"),
            UrlError::BadBucket { bucket, what } => {
                write!(f, "bucket name {bucket:?} is not valid: {what}")
            }
            UrlError::EmptyHost { url } => write!(f, "store URL {url:?} has no host"),
            UrlError::BadAccount { url } => write!(
                f,
                "swift URL {url:?} must be swift://host/AUTH_account/container/path"
            ),
            UrlError::BadAzureAccount { account } => write!(
                f,
                "Azure storage account name {account:?} is not valid (3-24 lower-case letters and digits)"
            ),
            UrlError::BadContainer { container } => write!(
                f,
                "Azure container name {container:?} is not valid (3-63 lower-case letters, digits and single hyphens)"
            ),
            UrlError::BadHost { host } => write!(f, "host {host:?} is not a valid host name"),
            UrlError::BadFileUrl { url } => write!(
                f,
                "file URL {url:?} must be file:///absolute/path (no host, no relative path)"
            ),
            UrlError::BadEndpoint { what } => write!(f, "S3 endpoint URL is not valid: {what}"),
            UrlError::NotAnObjectStore => f.write_str("a local path is not an object store"),
            UrlError::NotS3Api => f.write_str("Azure Blob storage is not reached through the S3 API"),
            UrlError::BadRegion { region } => write!(
                f,
                "region {region:?} is not valid (letters, digits, '-', '_' and '.' only)"
            ),
            UrlError::RegionRequired { host } => write!(
                f,
                "no region configured and none can be read from host {host:?}"
            ),
            UrlError::BadAddressingStyle { setting, value } => {
                write!(f, "{setting} is {value:?}; expected virtual, path or auto")
            }
        }
    }
}

impl std::error::Error for UrlError {}

/// Splits a store URL into its parts.
pub fn parse_store_url(url: &str) -> Result<StoreUrl, UrlError> {
    if url.starts_with('/') {
        return Ok(StoreUrl::File {
            path: PathBuf::from(url),
        });
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(UrlError::NotAUrl {
            url: url.to_string(),
        });
    };
    match scheme.to_ascii_lowercase().as_str() {
        "file" if rest.starts_with('/') => Ok(StoreUrl::File {
            path: PathBuf::from(rest),
        }),
        "file" => Err(UrlError::BadFileUrl {
            url: url.to_string(),
        }),
        "s3" => {
            let (bucket, prefix) = bucket_and_prefix(url, rest)?;
            Ok(StoreUrl::S3 { bucket, prefix })
        }
        "gs" => {
            let (bucket, prefix) = bucket_and_prefix(url, rest)?;
            Ok(StoreUrl::Gs { bucket, prefix })
        }
        "tos" => {
            let (host, rest) = host_and_rest(url, rest)?;
            let (bucket, prefix) = bucket_and_prefix(url, rest)?;
            Ok(StoreUrl::Tos {
                host,
                bucket,
                prefix,
            })
        }
        "swift" => {
            let (host, rest) = host_and_rest(url, rest)?;
            let (account, rest) = rest.split_once('/').unwrap_or((rest, ""));
            let name = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
            if account.is_empty() || !account.bytes().all(name) {
                return Err(UrlError::BadAccount {
                    url: url.to_string(),
                });
            }
            let (container, prefix) = bucket_and_prefix(url, rest)?;
            Ok(StoreUrl::Swift {
                host,
                account: account.to_string(),
                container,
                prefix,
            })
        }
        "azure" => {
            let (account, rest) = rest.split_once('/').unwrap_or((rest, ""));
            if account.is_empty() {
                return Err(UrlError::EmptyHost {
                    url: url.to_string(),
                });
            }
            let (container, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if container.is_empty() {
                return Err(UrlError::EmptyBucket {
                    url: url.to_string(),
                });
            }
            check_azure_names(account, container)?;
            Ok(StoreUrl::Azure {
                account: account.to_string(),
                container: container.to_string(),
                prefix: prefix.to_string(),
            })
        }
        _ => Err(UrlError::Unsupported {
            scheme: scheme.to_string(),
        }),
    }
}

/// Azure's naming rules for storage accounts and containers: checked here so a bad name
/// gets its own error rather than the service's 400 (or a request to another host).
fn check_azure_names(account: &str, container: &str) -> Result<(), UrlError> {
    let lower_alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !(3..=24).contains(&account.len()) || !account.bytes().all(lower_alnum) {
        return Err(UrlError::BadAzureAccount {
            account: account.to_string(),
        });
    }
    let bytes = container.as_bytes();
    let ok = (3..=63).contains(&bytes.len())
        && bytes.iter().all(|&b| lower_alnum(b) || b == b'-')
        && lower_alnum(bytes[0])
        && lower_alnum(bytes[bytes.len() - 1])
        && !container.contains("--");
    if !ok {
        return Err(UrlError::BadContainer {
            container: container.to_string(),
        });
    }
    Ok(())
}

/// The host of a URL that names one (`tos://host/...`, `swift://host/...`), lower-cased,
/// and what follows it.
fn host_and_rest<'a>(url: &str, rest: &'a str) -> Result<(String, &'a str), UrlError> {
    let (host, rest) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() {
        return Err(UrlError::EmptyHost {
            url: url.to_string(),
        });
    }
    check_host(host)?;
    Ok((host.to_ascii_lowercase(), rest))
}

fn bucket_and_prefix(url: &str, rest: &str) -> Result<(String, String), UrlError> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(UrlError::EmptyBucket {
            url: url.to_string(),
        });
    }
    check_bucket(bucket)?;
    Ok((bucket.to_string(), prefix.to_string()))
}

/// Bucket names across AWS (including legacy us-east-1 names), GCS and
/// TOS: 1..=255 of letters, digits, `.`, `-`, `_`.
fn check_bucket(bucket: &str) -> Result<(), UrlError> {
    let bad = |what: String| UrlError::BadBucket {
        bucket: bucket.to_string(),
        what,
    };
    if bucket.len() > 255 {
        return Err(bad(format!("{} bytes long (at most 255)", bucket.len())));
    }
    match bucket
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        Some(c) => Err(bad(format!("character {c:?} is not allowed"))),
        None => Ok(()),
    }
}

/// A DNS name (letters, digits, `.`, `-`), optionally with `:port`.
fn check_host(host: &str) -> Result<(), UrlError> {
    let (name, port) = host.rsplit_once(':').unwrap_or((host, "80"));
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if name_ok && port.parse::<u16>().is_ok() {
        Ok(())
    } else {
        Err(UrlError::BadHost {
            host: host.to_string(),
        })
    }
}

/// The addressing style from the settings in precedence order: the
/// profile's `addressing_style`, else `OSMO_S3_ADDRESSING_STYLE`
/// (`virtual|path|auto`), else `AWS_S3_FORCE_PATH_STYLE` (`true` means
/// path), else [`AddressingStyle::Auto`]. Empty values count as unset.
pub fn addressing_style(
    profile: Option<&str>,
    osmo_env: Option<&str>,
    force_path_env: Option<&str>,
) -> Result<AddressingStyle, UrlError> {
    let named = |setting: &'static str, value: &str| match value.to_ascii_lowercase().as_str() {
        "virtual" => Ok(AddressingStyle::Virtual),
        "path" => Ok(AddressingStyle::Path),
        "auto" => Ok(AddressingStyle::Auto),
        _ => Err(UrlError::BadAddressingStyle {
            setting,
            value: value.to_string(),
        }),
    };
    if let Some(value) = set(profile) {
        return named("profile addressing_style", value);
    }
    if let Some(value) = set(osmo_env) {
        return named("OSMO_S3_ADDRESSING_STYLE", value);
    }
    match set(force_path_env).map(str::to_ascii_lowercase).as_deref() {
        Some("true" | "1") => Ok(AddressingStyle::Path),
        Some("false" | "0") | None => Ok(AddressingStyle::Auto),
        Some(_) => Err(UrlError::BadAddressingStyle {
            setting: "AWS_S3_FORCE_PATH_STYLE",
            value: force_path_env.unwrap_or_default().to_string(),
        }),
    }
}

/// A setting's value, trimmed; `None` when unset or empty.
fn set(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// Where `url`'s requests go.
///
/// `endpoint` (a profile's `override_url` or `AWS_ENDPOINT_URL`, e.g.
/// `http://127.0.0.1:9000`) replaces the store's default host. Defaults:
/// s3 is `https://s3.{region}.amazonaws.com` (region `us-east-1` unless
/// given), gs is `https://storage.googleapis.com` signed for region `auto`,
/// tos is `https://{host}` and always virtual-host, swift is `https://{host}`
/// (region `us-east-1` unless given) with the container as the bucket. With
/// [`AddressingStyle::Auto`], virtual-host is used unless the bucket is not
/// a DNS label (dots, upper case, `_`) or the host is an IP literal or
/// `localhost`, where it cannot work.
pub fn resolve_target(
    url: &StoreUrl,
    endpoint: Option<&str>,
    region: Option<&str>,
    style: AddressingStyle,
) -> Result<BucketTarget, UrlError> {
    let region = set(region);
    if let Some(r) = region {
        let ok = r.len() <= 64
            && r.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !ok {
            return Err(UrlError::BadRegion {
                region: r.to_string(),
            });
        }
    }
    let (bucket, default_host, region, style) = match url {
        StoreUrl::File { .. } => return Err(UrlError::NotAnObjectStore),
        StoreUrl::Azure { .. } => return Err(UrlError::NotS3Api),
        StoreUrl::S3 { bucket, .. } => {
            let region = region.unwrap_or("us-east-1");
            (bucket, format!("s3.{region}.amazonaws.com"), region, style)
        }
        // GCS's XML API takes any region in the scope; `auto` is its
        // documented value.
        StoreUrl::Gs { bucket, .. } => (
            bucket,
            "storage.googleapis.com".to_string(),
            region.unwrap_or("auto"),
            style,
        ),
        StoreUrl::Tos { host, bucket, .. } => {
            let region = match region {
                Some(r) => r,
                None => tos_region(host)
                    .ok_or_else(|| UrlError::RegionRequired { host: host.clone() })?,
            };
            (bucket, host.clone(), region, AddressingStyle::Virtual)
        }
        StoreUrl::Swift {
            host, container, ..
        } => (
            container,
            host.clone(),
            region.unwrap_or("us-east-1"),
            style,
        ),
    };
    let (host, port, tls) = match endpoint.map(str::trim).filter(|e| !e.is_empty()) {
        Some(endpoint) => parse_endpoint(endpoint)?,
        None => match default_host.rsplit_once(':') {
            Some((name, port)) => (
                name.to_string(),
                port.parse().map_err(|_| UrlError::BadHost {
                    host: default_host.clone(),
                })?,
                true,
            ),
            None => (default_host, 443, true),
        },
    };
    let addressing = match style {
        AddressingStyle::Path => Addressing::Path,
        AddressingStyle::Virtual => Addressing::VirtualHost,
        AddressingStyle::Auto => {
            let ip = host.parse::<IpAddr>().is_ok();
            if ip || host.eq_ignore_ascii_case("localhost") || !dns_compatible(bucket) {
                Addressing::Path
            } else {
                Addressing::VirtualHost
            }
        }
    };
    Ok(BucketTarget {
        host,
        port,
        tls,
        bucket: bucket.clone(),
        region: region.to_string(),
        addressing,
    })
}

/// The region in a TOS host name: `tos-s3-cn-beijing.volces.com` or
/// `tos-cn-beijing.volces.com` give `cn-beijing`.
fn tos_region(host: &str) -> Option<&str> {
    let first = host.split('.').next()?;
    let region = first
        .strip_prefix("tos-s3-")
        .or_else(|| first.strip_prefix("tos-"))?;
    (!region.is_empty()).then_some(region)
}

/// A bucket that can be the first label of a host name (and match a
/// `*.host` certificate): 3..=63 of `a-z 0-9 -`, not starting or ending
/// with `-`.
fn dns_compatible(bucket: &str) -> bool {
    (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !bucket.starts_with('-')
        && !bucket.ends_with('-')
}

/// `http(s)://host[:port][/]` into host (IPv6 unbracketed), port and TLS.
fn parse_endpoint(endpoint: &str) -> Result<(String, u16, bool), UrlError> {
    let bad = |what| UrlError::BadEndpoint { what };
    let (scheme, rest) = endpoint
        .split_once("://")
        .ok_or(bad("it needs http:// or https://"))?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "https" => true,
        "http" => false,
        _ => return Err(bad("the scheme is not http or https")),
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('/') || authority.contains('?') || authority.contains('#') {
        return Err(bad(
            "it has a path or query (only http(s)://host[:port] is supported)",
        ));
    }
    if authority.contains('@') {
        return Err(bad("it has user info"));
    }
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or(bad("unclosed '[' in the host"))?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("the bracketed host is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or(bad("junk after the IPv6 host"))?,
            ),
        };
        (addr, port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n != 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(bad("the port is not a number from 1 to 65535")),
        },
    };
    if host.is_empty() {
        return Err(bad("the host is empty"));
    }
    if !host.contains(':') {
        check_host(host).map_err(|_| bad("the host is not a valid host name"))?;
    }
    Ok((host.to_ascii_lowercase(), port, tls))
}
