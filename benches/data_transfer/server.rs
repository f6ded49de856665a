//! The bench's S3 backend: s3s-fs (through `LargeBlocks`, behind s3s's SigV4 and payload
//! checks) for every operation but the parts of a multipart upload, which it takes the
//! way an object store does rather than the way s3s-fs does. s3s-fs hashes every part
//! with MD5 and, at CompleteMultipartUpload, reads every part back to write the object
//! and hash it again: 6-8 CPU-s per GiB, more than any client spends sending it.
//!
//! Here a part is written as it arrives (1 MiB blocks, no MD5), with its CRC64NVME taken
//! on the way (crc-fast, a fraction of a CPU-s per GiB) and the checksums the client
//! states checked as s3s-fs checks them on PutObject; the part's ETag is its CRC64NVME.
//! Completion checks each listed part against the one taken (ETag, checksums, the 5 MiB
//! minimum), joins the part files into the object with `copy_file_range` (no bytes
//! through userspace), and gets the object's CRC64NVME by combining the parts': a
//! FULL_OBJECT CRC64NVME the client states must match it, and HeadObject and GetObject
//! return it, as S3 does. The ETag is the MD5 of the parts' CRCs with the part count,
//! never an MD5 of the bytes.
//!
//! Files keep s3s-fs's layout (parts `.upload_id-<id>.part-<n>`, attributes and the
//! ETag/checksums in `.bucket-<b64>.object-<b64>[.upload-<id>].metadata.json` and
//! `…internal.json` under the root), so its other operations read them as their own.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use crc_fast::CrcAlgorithm;
use md5::Digest as _;
use s3s::dto::*;
use s3s::{s3_error, S3Error, S3Request, S3Response, S3Result};

use crate::s3_server::{in_blocks, LargeBlocks};

/// The smallest part S3 takes, except for the last.
const MIN_PART: u64 = 5 << 20;

/// What the server kept of a part it took.
struct Part {
    len: u64,
    crc64: u64,
    /// The checksums the client stated, as computed here.
    sums: Checksum,
}

impl Part {
    fn e_tag(&self) -> String {
        format!("{:016x}", self.crc64)
    }
}

pub struct FastFs {
    inner: LargeBlocks,
    /// s3s-fs's root, canonical.
    root: PathBuf,
    /// The parts taken so far, by upload id.
    uploads: Mutex<HashMap<String, BTreeMap<i32, Part>>>,
    tmp: AtomicU64,
}

impl FastFs {
    pub fn new(inner: LargeBlocks, root: &Path) -> FastFs {
        FastFs {
            inner,
            root: root.to_path_buf(),
            uploads: Mutex::default(),
            tmp: AtomicU64::new(0),
        }
    }

    /// A fresh temporary file name under the root, one s3s-fs's clean-up also removes.
    fn tmp_path(&self) -> PathBuf {
        let n = self.tmp.fetch_add(1, Ordering::Relaxed);
        self.root.join(format!(".tmp.fast{n}.internal.part"))
    }

    /// s3s-fs's `.bucket-<b64>.object-<b64>[.upload-<id>].<what>.json`.
    fn side_file(&self, bucket: &str, key: &str, upload: Option<&str>, what: &str) -> PathBuf {
        let upload = upload.map(|u| format!(".upload-{u}")).unwrap_or_default();
        self.root.join(format!(
            ".bucket-{}.object-{}{upload}.{what}.json",
            URL_SAFE_NO_PAD.encode(bucket),
            URL_SAFE_NO_PAD.encode(key)
        ))
    }

    fn part_path(&self, upload_id: &str, number: i32) -> PathBuf {
        self.root
            .join(format!(".upload_id-{upload_id}.part-{number}"))
    }

    /// The upload exists and was created with the caller's access key (s3s-fs's rule).
    fn check_upload(&self, creds: Option<&s3s::auth::Credentials>, id: &str) -> S3Result<()> {
        let uuid_like = id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        if !uuid_like {
            return Err(s3_error!(InvalidRequest));
        }
        let owner = std::fs::read(self.root.join(format!(".upload-{id}.json")))
            .ok()
            .and_then(|json| serde_json::from_slice::<Option<String>>(&json).ok());
        match owner {
            Some(owner) if owner.as_deref() == creds.map(|c| c.access_key.as_str()) => Ok(()),
            _ => Err(s3_error!(AccessDenied)),
        }
    }

    /// Writes `body` to a temporary file: its length, CRC64NVME and the stated sums.
    async fn take_body(
        &self,
        body: StreamingBlob,
        mut hasher: s3s::checksum::ChecksumHasher,
        tmp: &Path,
    ) -> std::io::Result<(u64, u64, Checksum)> {
        let file = Arc::new(std::fs::File::create(tmp)?);
        let mut body = in_blocks(body);
        let mut crc = crc_fast::Digest::new(CrcAlgorithm::Crc64Nvme);
        let mut len = 0u64;
        while let Some(block) = std::future::poll_fn(|cx| {
            futures_core::Stream::poll_next(std::pin::Pin::new(&mut body), cx)
        })
        .await
        {
            let block = block.map_err(std::io::Error::other)?;
            crc.update(&block);
            hasher.update(&block);
            let (file, at) = (file.clone(), len);
            len += block.len() as u64;
            tokio::task::spawn_blocking(move || file.write_all_at(&block, at)).await??;
        }
        Ok((len, crc.finalize(), hasher.finalize()))
    }
}

/// The five checksums of `c` with their names.
fn sums(c: &Checksum) -> [(&'static str, Option<&str>); 5] {
    [
        ("CRC32", c.checksum_crc32.as_deref()),
        ("CRC32C", c.checksum_crc32c.as_deref()),
        ("CRC64NVME", c.checksum_crc64nvme.as_deref()),
        ("SHA1", c.checksum_sha1.as_deref()),
        ("SHA256", c.checksum_sha256.as_deref()),
    ]
}

fn io_error(e: std::io::Error) -> S3Error {
    S3Error::internal_error(e)
}

/// Forwards every S3 operation s3s-fs serves, except those written out in `$own`.
macro_rules! fast_s3 {
    ($($op:ident: $input:ident => $output:ident),* $(,)?; $($own:item)*) => {
        #[async_trait::async_trait]
        impl s3s::S3 for FastFs {
            $(
                async fn $op(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                    self.inner.$op(req).await
                }
            )*
            $($own)*
        }
    };
}

fast_s3! {
    create_bucket: CreateBucketInput => CreateBucketOutput,
    copy_object: CopyObjectInput => CopyObjectOutput,
    delete_bucket: DeleteBucketInput => DeleteBucketOutput,
    delete_object: DeleteObjectInput => DeleteObjectOutput,
    delete_objects: DeleteObjectsInput => DeleteObjectsOutput,
    get_bucket_location: GetBucketLocationInput => GetBucketLocationOutput,
    get_object: GetObjectInput => GetObjectOutput,
    head_bucket: HeadBucketInput => HeadBucketOutput,
    head_object: HeadObjectInput => HeadObjectOutput,
    list_buckets: ListBucketsInput => ListBucketsOutput,
    list_objects: ListObjectsInput => ListObjectsOutput,
    list_objects_v2: ListObjectsV2Input => ListObjectsV2Output,
    put_object: PutObjectInput => PutObjectOutput,
    create_multipart_upload: CreateMultipartUploadInput => CreateMultipartUploadOutput,
    upload_part_copy: UploadPartCopyInput => UploadPartCopyOutput,
    list_parts: ListPartsInput => ListPartsOutput;

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let input = req.input;
        if !(1..=10_000).contains(&input.part_number) {
            return Err(s3_error!(InvalidArgument, "Part number must be between 1 and 10000"));
        }
        self.check_upload(req.credentials.as_ref(), &input.upload_id)?;
        let body = input.body.ok_or_else(|| s3_error!(IncompleteBody))?;
        let mut stated = Checksum {
            checksum_crc32: input.checksum_crc32,
            checksum_crc32c: input.checksum_crc32c,
            checksum_crc64nvme: input.checksum_crc64nvme,
            checksum_sha1: input.checksum_sha1,
            checksum_sha256: input.checksum_sha256,
            checksum_type: None,
        };
        // Hash what the client states, or names for its trailer (as s3s-fs's PutObject).
        let named = input.checksum_algorithm.as_ref().map(|a| a.as_str().to_string());
        let wants = |alg: &str, value: &Option<String>| value.is_some() || named.as_deref() == Some(alg);
        let hasher = s3s::checksum::ChecksumHasher {
            crc32: wants("CRC32", &stated.checksum_crc32).then(Default::default),
            crc32c: wants("CRC32C", &stated.checksum_crc32c).then(Default::default),
            crc64nvme: wants("CRC64NVME", &stated.checksum_crc64nvme).then(Default::default),
            sha1: wants("SHA1", &stated.checksum_sha1).then(Default::default),
            sha256: wants("SHA256", &stated.checksum_sha256).then(Default::default),
        };
        let tmp = self.tmp_path();
        let taken = self.take_body(body, hasher, &tmp).await;
        let (len, crc64, computed) = taken.inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        }).map_err(io_error)?;
        if let Some(trailers) = req.trailing_headers.and_then(|t| t.take()) {
            let trailer = |name: &str| trailers.get(name).and_then(|v| v.to_str().ok()).map(String::from);
            let t = |v: &mut Option<String>, name| *v = trailer(name).or(v.take());
            t(&mut stated.checksum_crc32, "x-amz-checksum-crc32");
            t(&mut stated.checksum_crc32c, "x-amz-checksum-crc32c");
            t(&mut stated.checksum_crc64nvme, "x-amz-checksum-crc64nvme");
            t(&mut stated.checksum_sha1, "x-amz-checksum-sha1");
            t(&mut stated.checksum_sha256, "x-amz-checksum-sha256");
        }
        for ((alg, ours), (_, theirs)) in sums(&computed).into_iter().zip(sums(&stated)) {
            if ours != theirs {
                let _ = std::fs::remove_file(&tmp);
                return Err(s3_error!(BadDigest, "checksum {alg} mismatch"));
            }
        }
        let path = self.part_path(&input.upload_id, input.part_number);
        std::fs::rename(&tmp, path).map_err(io_error)?;
        let part = Part { len, crc64, sums: computed.clone() };
        let e_tag = part.e_tag();
        let mut uploads = self.uploads.lock().unwrap_or_else(PoisonError::into_inner);
        uploads.entry(input.upload_id).or_default().insert(input.part_number, part);
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(ETag::Strong(e_tag)),
            checksum_crc32: computed.checksum_crc32,
            checksum_crc32c: computed.checksum_crc32c,
            checksum_crc64nvme: computed.checksum_crc64nvme,
            checksum_sha1: computed.checksum_sha1,
            checksum_sha256: computed.checksum_sha256,
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let input = req.input;
        let id = input.upload_id.as_str();
        self.check_upload(req.credentials.as_ref(), id)?;
        let safe_key = Path::new(&input.key).components().all(|c| matches!(c, Component::Normal(_)));
        if !safe_key {
            return Err(s3_error!(InvalidArgument, "key outside the bucket"));
        }
        let listed = input.multipart_upload.and_then(|m| m.parts).unwrap_or_default();
        if listed.is_empty() {
            return Err(s3_error!(InvalidPart, "You must specify at least one part"));
        }
        // Check the list against the parts taken: order, ETags, checksums, sizes.
        let (mut whole, mut md5) = (0u64, md5::Md5::new());
        let mut files = Vec::with_capacity(listed.len());
        {
            let uploads = self.uploads.lock().unwrap_or_else(PoisonError::into_inner);
            let taken = uploads.get(id);
            for (i, listed_part) in listed.iter().enumerate() {
                let number = listed_part.part_number.ok_or_else(|| s3_error!(InvalidRequest, "missing part number"))?;
                if usize::try_from(number).ok() != Some(i + 1) {
                    return Err(s3_error!(InvalidPartOrder));
                }
                let part = taken.and_then(|t| t.get(&number)).ok_or_else(|| s3_error!(InvalidPart))?;
                if listed_part.e_tag.as_ref().map(ETag::value) != Some(part.e_tag().as_str()) {
                    return Err(s3_error!(InvalidPart, "part {number}: not the ETag it was given"));
                }
                let stated = Checksum {
                    checksum_crc32: listed_part.checksum_crc32.clone(),
                    checksum_crc32c: listed_part.checksum_crc32c.clone(),
                    checksum_crc64nvme: listed_part.checksum_crc64nvme.clone(),
                    checksum_sha1: listed_part.checksum_sha1.clone(),
                    checksum_sha256: listed_part.checksum_sha256.clone(),
                    checksum_type: None,
                };
                for ((alg, ours), (_, theirs)) in sums(&part.sums).into_iter().zip(sums(&stated)) {
                    if theirs.is_some() && ours != theirs {
                        return Err(s3_error!(InvalidPart, "part {number}: not the {alg} it was sent with"));
                    }
                }
                if i + 1 < listed.len() && part.len < MIN_PART {
                    return Err(s3_error!(EntityTooSmall));
                }
                whole = crc_fast::checksum_combine(CrcAlgorithm::Crc64Nvme, whole, part.crc64, part.len);
                md5.update(part.crc64.to_be_bytes());
                files.push(self.part_path(id, number));
            }
        }
        let whole_b64 = STANDARD.encode(whole.to_be_bytes());
        if input.checksum_crc64nvme.as_ref().is_some_and(|c| *c != whole_b64) {
            return Err(s3_error!(BadDigest, "the object's CRC64NVME is not the one stated"));
        }
        let hex: String = md5.finalize().iter().map(|b| format!("{b:02x}")).collect();
        let e_tag = format!("{hex}-{}", listed.len());

        // The object: the part files joined in the kernel, then renamed into place.
        let (tmp, object) = (self.tmp_path(), self.root.join(&input.bucket).join(&input.key));
        let join = move || -> std::io::Result<()> {
            let out = std::fs::File::create(&tmp)?;
            let mut at = 0u64;
            for path in &files {
                let part = std::fs::File::open(path)?;
                let (len, mut from) = (part.metadata()?.len(), 0u64);
                while from < len {
                    let rest = usize::try_from(len - from).unwrap_or(usize::MAX);
                    let n = rustix::fs::copy_file_range(&part, Some(&mut from), &out, Some(&mut at), rest)?;
                    if n == 0 {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                }
            }
            if let Some(dir) = object.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::rename(&tmp, &object)?;
            files.iter().try_for_each(std::fs::remove_file)
        };
        tokio::task::spawn_blocking(join).await.map_err(S3Error::internal_error)?.map_err(io_error)?;

        // Attributes set at create become the object's; the ETag and CRC go in its info.
        let (bucket, key) = (&input.bucket, &input.key);
        let attributes = self.side_file(bucket, key, None, "metadata");
        if std::fs::rename(self.side_file(bucket, key, Some(id), "metadata"), &attributes).is_err() {
            let _ = std::fs::remove_file(&attributes);
        }
        let info = serde_json::json!({"e_tag": e_tag, "checksum_crc64nvme": whole_b64});
        let tmp = self.tmp_path();
        std::fs::write(&tmp, info.to_string()).map_err(io_error)?;
        std::fs::rename(&tmp, self.side_file(bucket, key, None, "internal")).map_err(io_error)?;
        let _ = std::fs::remove_file(self.root.join(format!(".upload-{id}.json")));
        self.uploads.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            e_tag: Some(ETag::Strong(e_tag)),
            checksum_crc64nvme: Some(whole_b64),
            checksum_type: Some(ChecksumType::from_static(ChecksumType::FULL_OBJECT)),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let id = req.input.upload_id.clone();
        let answer = self.inner.abort_multipart_upload(req).await?;
        self.uploads.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        Ok(answer)
    }
}
