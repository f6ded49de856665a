//! A real S3 server for the data-plane tests: `s3s-fs` (the S3 API over a folder,
//! one directory per bucket) behind `s3s`'s SigV4 check, run in-process on its own
//! tokio runtime and thread. Requests signed with another secret are refused with
//! `SignatureDoesNotMatch`, and every request must carry `x-amz-content-sha256`.
//! Path-style addressing only unless started with [`S3Server::start_with_domain`].
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};

use hyper_util::rt::TokioIo;
use s3s::auth::SimpleAuth;
use s3s::host::MultiDomain;
use s3s::service::S3ServiceBuilder;
use tokio::sync::oneshot;

/// A running server; dropping it stops the runtime and removes the data folder.
pub struct S3Server {
    pub port: u16,
    /// The served folder: `root/<bucket>/<key>`.
    pub root: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl S3Server {
    /// Starts on 127.0.0.1 (ephemeral port) with one access key.
    pub fn start(access_key: &str, secret: &str) -> S3Server {
        S3Server::launch(access_key, secret, None)
    }

    /// Like [`S3Server::start`], and also answers virtual-hosted-style requests whose
    /// `Host` is `<bucket>.<domain>:<port>` (clients connect to 127.0.0.1 and send
    /// that Host); `Host: 127.0.0.1:<port>` stays path-style.
    pub fn start_with_domain(access_key: &str, secret: &str, domain: &str) -> S3Server {
        S3Server::launch(access_key, secret, Some(domain))
    }

    fn launch(access_key: &str, secret: &str, domain: Option<&str>) -> S3Server {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "sidewire-s3-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("create the S3 data folder");

        let std_listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port on 127.0.0.1");
        let addr: SocketAddr = std_listener.local_addr().expect("listener address");
        std_listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let fs = s3s_fs::FileSystem::new(&root).expect("s3s-fs over the data folder");
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(access_key, secret));
        if let Some(domain) = domain {
            // s3s matches the Host header with its port; 127.0.0.1 stays path-style.
            let port = addr.port();
            let domains = [format!("{domain}:{port}"), format!("127.0.0.1:{port}")];
            builder.set_host(MultiDomain::new(&domains).expect("valid S3 domain names"));
        }
        let service = builder.build();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_io()
            .enable_time()
            .build()
            .expect("tokio runtime for the S3 server");
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = thread::spawn(move || {
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener)
                    .expect("register the listener with tokio");
                tokio::spawn(async move {
                    while let Ok((socket, _)) = listener.accept().await {
                        let _ = socket.set_nodelay(true);
                        let service = service.clone();
                        tokio::spawn(async move {
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(socket), service)
                                .await;
                        });
                    }
                });
                let _ = stopped.await;
            });
            // Dropping the runtime cancels the accept loop and open connections.
            drop(runtime);
        });
        S3Server {
            port: addr.port(),
            root,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket: s3s-fs maps a bucket to a directory under the root.
    pub fn create_bucket(&self, name: &str) {
        std::fs::create_dir_all(self.root.join(name)).expect("create the bucket directory");
    }

    /// Where the object `bucket/key` is stored on disk.
    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.join(bucket).join(Path::new(key))
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
