//! The bench's S3 backend: s3s-fs (through `LargeBlocks`, behind s3s's SigV4 and payload
//! checks) for every operation but UploadPart and CompleteMultipartUpload. s3s-fs hashes
//! every part with MD5, then reads every part back to write the object and hash it again:
//! 6-8 CPU-s per GiB, more than either client spends sending it.
//!
//! Here a part is written as it arrives (1 MiB blocks), its CRC64NVME taken on the way
//! (crc-fast: a fraction of a CPU-s per GiB) and any checksum the client states checked
//! as s3s-fs's PutObject checks it; the part's ETag is its CRC64NVME. Completion checks
//! the listed parts against those taken (order, ETags, the 5 MiB minimum), joins the part
//! files into the object with `copy_file_range` and combines the parts' CRCs into the
//! object's CRC64NVME: a FULL_OBJECT CRC64NVME the client states must match it, and
//! HeadObject and GetObject return it, as S3 does. The object's ETag is the MD5 of the
//! parts' CRCs and the part count, never an MD5 of its bytes.
//!
//! Files keep s3s-fs's layout (parts `.upload_id-<id>.part-<n>`, attributes and ETag and
//! checksums in `.bucket-<b64>.object-<b64>[.upload-<id>].{metadata,internal}.json`
//! under the root), so its other operations read them as their own.

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

/// The checksum algorithms S3 names, as a client states them.
const ALGORITHMS: [&str; 5] = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"];

/// The parts taken so far, by upload id: part number -> (length, CRC64NVME).
type Uploads = HashMap<String, BTreeMap<i32, (u64, u64)>>;

pub struct FastFs {
    inner: LargeBlocks,
    /// s3s-fs's root, canonical.
    root: PathBuf,
    uploads: Mutex<Uploads>,
    tmp: AtomicU64,
}

impl FastFs {
    pub fn new(inner: LargeBlocks, root: &Path) -> FastFs {
        let (root, uploads, tmp) = (root.to_path_buf(), Mutex::default(), AtomicU64::new(0));
        FastFs {
            inner,
            root,
            uploads,
            tmp,
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
        let (bucket, key) = (URL_SAFE_NO_PAD.encode(bucket), URL_SAFE_NO_PAD.encode(key));
        self.root
            .join(format!(".bucket-{bucket}.object-{key}{upload}.{what}.json"))
    }

    fn part_path(&self, upload_id: &str, number: i32) -> PathBuf {
        self.root
            .join(format!(".upload_id-{upload_id}.part-{number}"))
    }

    fn parts(&self) -> std::sync::MutexGuard<'_, Uploads> {
        self.uploads.lock().unwrap_or_else(PoisonError::into_inner)
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

    /// Writes `body` to `tmp`: its length, CRC64NVME and the sums `hasher` was set for.
    async fn write_body(
        body: StreamingBlob,
        mut hasher: s3s::checksum::ChecksumHasher,
        tmp: &Path,
    ) -> std::io::Result<(u64, u64, Checksum)> {
        let file = Arc::new(std::fs::File::create(tmp)?);
        let mut body = in_blocks(body);
        let mut crc = crc_fast::Digest::new(CrcAlgorithm::Crc64Nvme);
        let mut len = 0u64;
        use futures_core::Stream;
        while let Some(block) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_next(cx)).await
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

    /// UploadPart: the part written as it comes, its CRC64NVME taken, stated sums checked.
    async fn take_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let input = req.input;
        if !(1..=10_000).contains(&input.part_number) {
            return Err(s3_error!(InvalidArgument, "part number not in 1..=10000"));
        }
        self.check_upload(req.credentials.as_ref(), &input.upload_id)?;
        let body = input.body.ok_or_else(|| s3_error!(IncompleteBody))?;
        let mut stated = [
            input.checksum_crc32,
            input.checksum_crc32c,
            input.checksum_crc64nvme,
            input.checksum_sha1,
            input.checksum_sha256,
        ];
        // Hash what the client states, or names for a trailer (as s3s-fs's PutObject).
        let named = input
            .checksum_algorithm
            .as_ref()
            .map(|a| a.as_str().to_string());
        let wants = |i: usize| stated[i].is_some() || named.as_deref() == Some(ALGORITHMS[i]);
        let hasher = s3s::checksum::ChecksumHasher {
            crc32: wants(0).then(Default::default),
            crc32c: wants(1).then(Default::default),
            crc64nvme: wants(2).then(Default::default),
            sha1: wants(3).then(Default::default),
            sha256: wants(4).then(Default::default),
        };
        let tmp = self.tmp_path();
        let written = FastFs::write_body(body, hasher, &tmp).await;
        let trailers = req
            .trailing_headers
            .and_then(|t| t.take())
            .unwrap_or_default();
        for (i, value) in stated.iter_mut().enumerate() {
            let name = format!("x-amz-checksum-{}", ALGORITHMS[i].to_lowercase());
            if let Some(v) = trailers.get(&name).and_then(|v| v.to_str().ok()) {
                *value = Some(v.to_string());
            }
        }
        let checked = written
            .map_err(S3Error::internal_error)
            .and_then(|(len, crc, sums)| {
                let ours = [
                    &sums.checksum_crc32,
                    &sums.checksum_crc32c,
                    &sums.checksum_crc64nvme,
                    &sums.checksum_sha1,
                    &sums.checksum_sha256,
                ];
                match (0..5).find(|&i| *ours[i] != stated[i]) {
                    Some(i) => Err(s3_error!(BadDigest, "{} mismatch", ALGORITHMS[i])),
                    None => Ok((len, crc, sums)),
                }
            });
        let (len, crc64, sums) = checked.inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })?;
        let path = self.part_path(&input.upload_id, input.part_number);
        std::fs::rename(&tmp, path).map_err(S3Error::internal_error)?;
        let parts = &mut self.parts();
        let upload = parts.entry(input.upload_id).or_default();
        upload.insert(input.part_number, (len, crc64));
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(ETag::Strong(format!("{crc64:016x}"))),
            checksum_crc32: sums.checksum_crc32,
            checksum_crc32c: sums.checksum_crc32c,
            checksum_crc64nvme: sums.checksum_crc64nvme,
            checksum_sha1: sums.checksum_sha1,
            checksum_sha256: sums.checksum_sha256,
            ..Default::default()
        }))
    }

    /// CompleteMultipartUpload: the listed parts checked and joined into the object.
    async fn complete(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let input = req.input;
        let (bucket, key, id) = (&input.bucket, &input.key, input.upload_id.as_str());
        self.check_upload(req.credentials.as_ref(), id)?;
        if !Path::new(key)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(s3_error!(InvalidArgument, "key outside the bucket"));
        }
        let listed = input
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default();
        if listed.is_empty() {
            return Err(s3_error!(InvalidPart, "You must specify at least one part"));
        }
        // The list against the parts taken: order, ETags, sizes.
        let (mut whole, mut md5) = (0u64, md5::Md5::new());
        let mut files = Vec::with_capacity(listed.len());
        for (i, part) in listed.iter().enumerate() {
            let number = part.part_number.unwrap_or(0);
            if usize::try_from(number).ok() != Some(i + 1) {
                return Err(s3_error!(InvalidPartOrder));
            }
            let taken = self.parts().get(id).and_then(|p| p.get(&number)).copied();
            let Some((len, crc)) = taken else {
                return Err(s3_error!(InvalidPart, "part {number} was not uploaded"));
            };
            if part.e_tag.as_ref().map(ETag::value) != Some(format!("{crc:016x}").as_str()) {
                return Err(s3_error!(InvalidPart, "part {number}: not its ETag"));
            }
            if i + 1 < listed.len() && len < MIN_PART {
                return Err(s3_error!(EntityTooSmall));
            }
            whole = crc_fast::checksum_combine(CrcAlgorithm::Crc64Nvme, whole, crc, len);
            md5.update(crc.to_be_bytes());
            files.push(self.part_path(id, number));
        }
        let whole = STANDARD.encode(whole.to_be_bytes());
        if input
            .checksum_crc64nvme
            .as_ref()
            .is_some_and(|c| *c != whole)
        {
            return Err(s3_error!(
                BadDigest,
                "the object's CRC64NVME is not the one stated"
            ));
        }
        let md5: String = md5.finalize().iter().map(|b| format!("{b:02x}")).collect();
        let e_tag = format!("{md5}-{}", listed.len());

        // The object: the part files joined in the kernel, each removed once copied, then
        // renamed into place. Copying into the pages a part just freed costs far less
        // than into fresh ones here (a 1 GiB upload's server CPU: 2.0 s against 3.0-4.7
        // s); the price is that a completion failing part-way loses the upload.
        let (tmp, object) = (self.tmp_path(), self.root.join(bucket).join(key));
        let join = move || -> std::io::Result<()> {
            let out = std::fs::File::create(&tmp)?;
            let mut at = 0u64;
            for path in &files {
                let part = std::fs::File::open(path)?;
                let (len, mut from) = (part.metadata()?.len(), 0u64);
                while from < len {
                    let rest = usize::try_from(len - from).unwrap_or(usize::MAX);
                    let (off_in, off_out) = (Some(&mut from), Some(&mut at));
                    if rustix::fs::copy_file_range(&part, off_in, &out, off_out, rest)? == 0 {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                }
                // Freed now, its pages are the ones the next part is copied into.
                std::fs::remove_file(path)?;
            }
            std::fs::create_dir_all(object.parent().expect("a key has a bucket"))?;
            std::fs::rename(&tmp, &object)
        };
        let joined = tokio::task::spawn_blocking(join).await;
        joined
            .map_err(S3Error::internal_error)?
            .map_err(S3Error::internal_error)?;

        // Attributes set at create become the object's; its ETag and CRC go in its info.
        let attributes = self.side_file(bucket, key, None, "metadata");
        if std::fs::rename(
            self.side_file(bucket, key, Some(id), "metadata"),
            &attributes,
        )
        .is_err()
        {
            let _ = std::fs::remove_file(&attributes);
        }
        let info = serde_json::json!({"e_tag": e_tag, "checksum_crc64nvme": whole});
        let tmp = self.tmp_path();
        let info_file = self.side_file(bucket, key, None, "internal");
        std::fs::write(&tmp, info.to_string())
            .and_then(|()| std::fs::rename(&tmp, info_file))
            .map_err(S3Error::internal_error)?;
        let _ = std::fs::remove_file(self.root.join(format!(".upload-{id}.json")));
        self.parts().remove(id);
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            e_tag: Some(ETag::Strong(e_tag)),
            checksum_crc64nvme: Some(whole),
            checksum_type: Some(ChecksumType::from_static(ChecksumType::FULL_OBJECT)),
            bucket: Some(input.bucket),
            key: Some(input.key),
            ..Default::default()
        }))
    }
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
        self.take_part(req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        self.complete(req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let id = req.input.upload_id.clone();
        let answer = self.inner.abort_multipart_upload(req).await?;
        self.parts().remove(&id);
        Ok(answer)
    }
}
