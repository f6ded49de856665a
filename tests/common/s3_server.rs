//! A real S3 server for the data-plane tests: `s3s-fs` (the S3 API over a folder,
//! one directory per bucket) behind `s3s`'s SigV4 check, run in-process on its own
//! tokio runtime and thread. Requests signed with another secret are refused with
//! `SignatureDoesNotMatch`, and every request must carry `x-amz-content-sha256`.
//! Path-style addressing only unless started with [`S3Server::start_with_domain`].
//!
//! Object bodies move in 1 MiB blocks ([`LargeBlocks`]): s3s-fs itself reads a GET
//! body 4 KiB at a time and writes an upload as it arrives (8-64 KiB), each block one
//! trip through tokio's blocking pool. That cost the server ~5 CPU-s per GiB, which
//! made it the bottleneck of every client it served.
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

    /// Like [`S3Server::start`], with the S3 operations served by what `wrap` makes of
    /// the usual s3s-fs service and the (canonical) data folder.
    pub fn start_wrapped<S: s3s::S3>(
        access_key: &str,
        secret: &str,
        wrap: impl FnOnce(LargeBlocks, &Path) -> S,
    ) -> S3Server {
        S3Server::launch_with(access_key, secret, None, wrap)
    }

    fn launch(access_key: &str, secret: &str, domain: Option<&str>) -> S3Server {
        S3Server::launch_with(access_key, secret, domain, |fs, _| fs)
    }

    fn launch_with<S: s3s::S3>(
        access_key: &str,
        secret: &str,
        domain: Option<&str>,
        wrap: impl FnOnce(LargeBlocks, &Path) -> S,
    ) -> S3Server {
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
        let canonical = root.canonicalize().expect("the data folder's path");
        let fs = LargeBlocks {
            inner: fs,
            root: root.clone(),
        };
        let mut builder = S3ServiceBuilder::new(wrap(fs, &canonical));
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

/// One MiB: the block size object bodies move in, to and from the disk.
pub const BLOCK: usize = 1 << 20;

/// s3s-fs with object bodies moved in [`BLOCK`]s: uploads are gathered into blocks
/// before s3s-fs writes them, and GET bodies are read from the file a block at a time.
/// Everything else (signatures, payload hashes, ETags, multipart) is s3s-fs's own.
pub struct LargeBlocks {
    inner: s3s_fs::FileSystem,
    root: PathBuf,
}

/// Forwards the S3 operations s3s-fs implements, except those named in `$own`.
macro_rules! large_blocks_s3 {
    ($($op:ident: $input:ident => $output:ident),* $(,)?; $($own:item)*) => {
        #[async_trait::async_trait]
        impl s3s::S3 for LargeBlocks {
            $(
                async fn $op(
                    &self,
                    req: s3s::S3Request<s3s::dto::$input>,
                ) -> s3s::S3Result<s3s::S3Response<s3s::dto::$output>> {
                    self.inner.$op(req).await
                }
            )*
            $($own)*
        }
    };
}

large_blocks_s3! {
    create_bucket: CreateBucketInput => CreateBucketOutput,
    copy_object: CopyObjectInput => CopyObjectOutput,
    delete_bucket: DeleteBucketInput => DeleteBucketOutput,
    delete_object: DeleteObjectInput => DeleteObjectOutput,
    delete_objects: DeleteObjectsInput => DeleteObjectsOutput,
    get_bucket_location: GetBucketLocationInput => GetBucketLocationOutput,
    head_bucket: HeadBucketInput => HeadBucketOutput,
    head_object: HeadObjectInput => HeadObjectOutput,
    list_buckets: ListBucketsInput => ListBucketsOutput,
    list_objects: ListObjectsInput => ListObjectsOutput,
    list_objects_v2: ListObjectsV2Input => ListObjectsV2Output,
    create_multipart_upload: CreateMultipartUploadInput => CreateMultipartUploadOutput,
    upload_part_copy: UploadPartCopyInput => UploadPartCopyOutput,
    list_parts: ListPartsInput => ListPartsOutput,
    complete_multipart_upload: CompleteMultipartUploadInput => CompleteMultipartUploadOutput,
    abort_multipart_upload: AbortMultipartUploadInput => AbortMultipartUploadOutput;

    async fn put_object(
        &self,
        mut req: s3s::S3Request<s3s::dto::PutObjectInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::PutObjectOutput>> {
        req.input.body = req.input.body.take().map(in_blocks);
        self.inner.put_object(req).await
    }

    async fn upload_part(
        &self,
        mut req: s3s::S3Request<s3s::dto::UploadPartInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::UploadPartOutput>> {
        req.input.body = req.input.body.take().map(in_blocks);
        self.inner.upload_part(req).await
    }

    async fn get_object(
        &self,
        req: s3s::S3Request<s3s::dto::GetObjectInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::GetObjectOutput>> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let path = self.root.join(&req.input.bucket).join(&req.input.key);
        let mut resp = self.inner.get_object(req).await?;
        // s3s-fs checked the range and the key; read the same bytes in blocks.
        let start = resp
            .output
            .content_range
            .as_deref()
            .and_then(|r| r.strip_prefix("bytes "))
            .and_then(|r| r.split('-').next())
            .and_then(|first| first.parse::<u64>().ok())
            .unwrap_or(0);
        let len = resp.output.content_length.unwrap_or(0) as u64;
        let io_error = |e: std::io::Error| s3s::S3Error::internal_error(e);
        let mut file = tokio::fs::File::open(&path).await.map_err(io_error)?;
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(io_error)?;
        let blocks = tokio_util::io::ReaderStream::with_capacity(file.take(len), BLOCK);
        resp.output.body = Some(s3s::dto::StreamingBlob::wrap(blocks));
        Ok(resp)
    }
}

/// `body` re-cut into [`BLOCK`]-sized pieces.
pub fn in_blocks(body: s3s::dto::StreamingBlob) -> s3s::dto::StreamingBlob {
    s3s::dto::StreamingBlob::wrap(Gather {
        body,
        block: bytes::BytesMut::new(),
        ended: false,
    })
}

/// A body stream re-cut into [`BLOCK`]-sized pieces (the last one shorter).
struct Gather {
    body: s3s::dto::StreamingBlob,
    block: bytes::BytesMut,
    ended: bool,
}

impl futures_core::Stream for Gather {
    type Item = std::io::Result<bytes::Bytes>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        while !self.ended && self.block.len() < BLOCK {
            match std::pin::Pin::new(&mut self.body).poll_next(cx) {
                Poll::Ready(Some(Ok(piece))) => self.block.extend_from_slice(&piece),
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Some(Err(std::io::Error::other(e))))
                }
                Poll::Ready(None) => self.ended = true,
                Poll::Pending => return Poll::Pending,
            }
        }
        if self.block.is_empty() {
            return Poll::Ready(None);
        }
        Poll::Ready(Some(Ok(self.block.split().freeze())))
    }
}
