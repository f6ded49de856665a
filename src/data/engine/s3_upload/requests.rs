//! The request, body and description of each upload op.

use super::super::s3_job::{Purpose, S3Job, MAX_XML};
use crate::net::http_pool::{RequestBody, ResponseSink};
use crate::proto::s3::{self, Request};

impl S3Job {
    pub(in crate::data::engine) fn upload_body_of(&self, purpose: &Purpose) -> RequestBody {
        match *purpose {
            Purpose::Put { file } => {
                let f = self.up_file(file);
                match &f.file {
                    Some(fd) => RequestBody::File {
                        file: fd.clone(),
                        offset: 0,
                        len: f.local.size,
                    },
                    None => RequestBody::None,
                }
            }
            Purpose::Part {
                file, offset, len, ..
            } => match &self.up_file(file).file {
                Some(fd) => RequestBody::File {
                    file: fd.clone(),
                    offset,
                    len,
                },
                None => RequestBody::None,
            },
            Purpose::Complete { file } => {
                let parts: Vec<(u32, String)> = self
                    .up_file(file)
                    .parts_done
                    .iter()
                    .map(|(n, e)| (*n, e.clone()))
                    .collect();
                RequestBody::Bytes(s3::complete_multipart_body(&parts))
            }
            _ => RequestBody::None,
        }
    }

    pub(in crate::data::engine) fn request_of(&self, purpose: &Purpose) -> (Request, ResponseSink) {
        let collect = ResponseSink::Collect { max: MAX_XML };
        let t = &self.target;
        match purpose {
            Purpose::List { token } => (
                s3::list_objects_v2(t, &self.prefix, token.as_deref()),
                collect,
            ),
            Purpose::Put { file } => (s3::put_object(t, &self.up_file(*file).key), collect),
            Purpose::Create { file } => {
                (s3::create_multipart(t, &self.up_file(*file).key), collect)
            }
            Purpose::ListParts { file, marker } => {
                let f = self.up_file(*file);
                (s3::list_parts(t, &f.key, &f.upload_id, *marker), collect)
            }
            Purpose::Part { file, number, .. } => {
                let f = self.up_file(*file);
                (s3::upload_part(t, &f.key, &f.upload_id, *number), collect)
            }
            Purpose::Complete { file } => {
                let f = self.up_file(*file);
                (s3::complete_multipart(t, &f.key, &f.upload_id), collect)
            }
            Purpose::Check { file } => (s3::head_object(t, &self.up_file(*file).key), collect),
            Purpose::Abort { key, upload_id } => (s3::abort_multipart(t, key, upload_id), collect),
            Purpose::Get { .. } | Purpose::Verify { .. } => self.download_request_of(purpose),
        }
    }

    pub(in crate::data::engine) fn describe_file(&self, purpose: &Purpose) -> String {
        match *purpose {
            Purpose::List { .. } => format!("Listing {}", self.work.url),
            Purpose::Put { file }
            | Purpose::Create { file }
            | Purpose::ListParts { file, .. }
            | Purpose::Complete { file }
            | Purpose::Check { file } => {
                format!("Uploading {}", self.up_file(file).local.rel)
            }
            Purpose::Part { file, number, .. } => {
                format!(
                    "Uploading part {number} of {}",
                    self.up_file(file).local.rel
                )
            }
            Purpose::Get { file, offset, .. } => self.describe_get(file, offset),
            Purpose::Verify { file } => self.describe_get(file, 0),
            Purpose::Abort { ref key, .. } => format!("Aborting the abandoned upload of {key}"),
        }
    }
}
