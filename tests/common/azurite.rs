//! Azurite, Microsoft's Azure Storage emulator (from the npm registry), as the Blob
//! service peer: one `azurite-blob` process per test on a free port with a folder of its
//! own, killed when the handle drops. It checks Shared Key signatures like Azure; it takes
//! `x-ms-content-crc64` only in loose mode, and does not check it.
//!
//! `scripts/test` installs it into `target/peers/azurite`; `AZURITE_BLOB` names another
//! `azurite-blob`. Without it the test fails and says how to install it: a missing peer
//! is never a pass.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
        format!(
            "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint=http://127.0.0.1:{}/{ACCOUNT};",
            self.port
        )
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
