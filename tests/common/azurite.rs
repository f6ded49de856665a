//! Azurite, Microsoft's Azure Storage emulator (from the npm registry), as the Blob
//! service peer: one `azurite-blob` process per test on a free port with a folder of its
//! own, killed when the handle drops. It checks Shared Key signatures like Azure; it takes
//! `x-ms-content-crc64` only in loose mode, and does not check it.
//!
//! `scripts/test` installs it into `target/peers/azurite`; `AZURITE_BLOB` names another
//! `azurite-blob`. Without it the test fails and says how to install it: a missing peer
//! is never a pass.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use sidewire::proto::azure::{self, AzureAccount, Request};
use sidewire::proto::http::{Body, Collector, Response};

/// The emulator's well-known account and key.
pub const ACCOUNT: &str = "devstoreaccount1";
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub struct Azurite {
    pub port: u16,
    child: Child,
    dir: PathBuf,
}

fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("AZURITE_BLOB") {
        return path.into();
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/peers/azurite/node_modules/.bin/azurite-blob");
    assert!(
        local.exists(),
        "Azurite is not installed: run scripts/test, or `npm install --prefix target/peers/azurite azurite`, or set AZURITE_BLOB"
    );
    local
}

impl Azurite {
    pub fn start(name: &str) -> Azurite {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir =
            std::env::temp_dir().join(format!("sidewire-azurite-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("Azurite's folder");
        let child = Command::new(binary())
            .args(["--blobHost", "127.0.0.1", "--blobPort"])
            .arg(port.to_string())
            .arg("--location")
            .arg(&dir)
            // --loose: strict mode refuses x-ms-content-crc64 (which Azurite does not check).
            .args(["--silent", "--disableTelemetry", "--loose"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("azurite-blob starts (node is needed)");
        let azurite = Azurite { port, child, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "Azurite never listened on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        azurite
    }

    /// The connection string of the emulator's account.
    pub fn connection_string(&self) -> String {
        self.connection_string_via(&format!("http://127.0.0.1:{}", self.port), KEY)
    }

    /// The connection string of the emulator's account reached at `endpoint` (a proxy in
    /// front of it), with account key `key`.
    pub fn connection_string_via(&self, endpoint: &str, key: &str) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};BlobEndpoint={endpoint}/{ACCOUNT};"
        )
    }

    /// A connection string with an account SAS (blob service; read, write, list, add,
    /// create; all resource types) in place of the key, signed with the account key.
    pub fn sas_connection_string(&self) -> String {
        use base64::engine::general_purpose::STANDARD;
        use base64::Engine as _;
        use hmac::{Hmac, Mac};
        let (permissions, expiry, version) = ("rwlac", "2099-01-01T00:00:00Z", azure::API_VERSION);
        // Account SAS, version 2020-12-06 and later: ends with the encryption scope.
        let text = format!("{ACCOUNT}\n{permissions}\nb\nsco\n\n{expiry}\n\nhttp\n{version}\n\n");
        let key = STANDARD.decode(KEY).expect("the account key");
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
        mac.update(text.as_bytes());
        let sig = STANDARD.encode(mac.finalize().into_bytes());
        let sig: String = sig
            .bytes()
            .map(|b| match b {
                b'+' => "%2B".to_string(),
                b'/' => "%2F".to_string(),
                b'=' => "%3D".to_string(),
                _ => (b as char).to_string(),
            })
            .collect();
        format!(
            "BlobEndpoint=http://127.0.0.1:{}/{ACCOUNT};SharedAccessSignature=sv={version}&ss=b&srt=sco&sp={permissions}&se={expiry}&spr=http&sig={sig}",
            self.port
        )
    }

    /// The emulator's account, as its connection string describes it.
    pub fn account(&self) -> AzureAccount {
        azure::parse_conn_string(&self.connection_string(), ACCOUNT).expect("Azurite's account")
    }

    /// Creates container `name`.
    pub fn create_container(&self, name: &str) {
        let created = self.send(&self.account(), azure::create_container(name), b"");
        assert_eq!(
            created.head.status,
            201,
            "{}",
            String::from_utf8_lossy(&created.body)
        );
    }

    /// Signs and sends `request` with `body` as `account`, and reads the whole answer.
    pub fn send(&self, account: &AzureAccount, mut request: Request, body: &[u8]) -> Response {
        request.sign(account, body.len() as u64, SystemTime::now());
        let mut head = Vec::new();
        let sent = if body.is_empty() {
            Body::None
        } else {
            Body::Bytes(body)
        };
        request
            .write_head(&mut head, account, sent)
            .expect("a valid head");
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("Azurite");
        stream.write_all(&head).unwrap();
        let mut collector = Collector::new(16 << 20, request.method == "HEAD");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 65536];
        loop {
            let (used, done) = collector.feed(&buf).expect("an HTTP answer");
            buf.drain(..used);
            if let Some(response) = done {
                return response;
            }
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "Azurite closed before answering");
            buf.extend_from_slice(&chunk[..n]);
        }
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
