//! Where a spec's URL points: an object store (an S3-compatible bucket or an Azure
//! container, with its credentials) or a folder of a shared filesystem.

use std::path::{Path, PathBuf};

use super::creds::{self, AwsEnv, CredentialFile};
use crate::proto::azure::{self, AzureAccount};
use crate::proto::s3::{self, BucketTarget, Credentials, StoreUrl};

pub enum Store {
    Object {
        api: ObjectApi,
        /// Key prefix the spec's URL names, without a leading `/`.
        prefix: String,
    },
    Folder(PathBuf),
}

/// The API an object store is spoken to in, and what its requests need.
pub enum ObjectApi {
    /// S3 (AWS, GCS, TOS, Swift and the S3-compatible stores), signed with SigV4.
    S3 {
        target: BucketTarget,
        creds: Credentials,
    },
    /// Azure Blob storage's REST API, with Shared Key or a SAS.
    Azure {
        account: AzureAccount,
        container: String,
    },
}

/// Which credential file a spec reads (PROTOCOL.md §6): `task:` specs the service's,
/// `url:` specs the user's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    Service,
    User,
}

/// The credential files, read once per process (ctrl's flags name them).
pub struct CredentialFiles {
    pub user: PathBuf,
    pub service: PathBuf,
    pub env: AwsEnv,
    /// `$OSMO_CONFIG_FILE_DIR`: where the file in use is published as `config.yaml`.
    pub config_dir: Option<PathBuf>,
}

impl CredentialFiles {
    fn path(&self, source: CredentialSource) -> &Path {
        match source {
            CredentialSource::Service => &self.service,
            CredentialSource::User => &self.user,
        }
    }

    /// Resolves `url` to a store, reading the credential file `source` names when the
    /// store needs credentials.
    pub fn resolve(&self, url: &str, source: CredentialSource) -> Result<Store, String> {
        let parsed = s3::parse_store_url(url).map_err(|e| e.to_string())?;
        if let StoreUrl::File { path } = &parsed {
            return Ok(Store::Folder(path.clone()));
        }
        let path = self.path(source);
        let file = CredentialFile::load(path).map_err(|e| e.to_string())?;
        let cred = file
            .select(&parsed.profile_key(), &self.env)
            .map_err(|e| e.to_string())?;
        if let Err(e) = creds::publish_config(path, self.config_dir.as_deref()) {
            crate::note!(
                "data: cannot copy {} to the config folder: {e}",
                path.display()
            );
        }
        if let StoreUrl::Azure {
            account,
            container,
            prefix,
        } = &parsed
        {
            // The profile's access_key is the account's connection string.
            let account =
                azure::parse_conn_string(&cred.secret_access_key, account).map_err(|e| {
                    format!(
                        "{}: profile {:?}: access_key: {e}",
                        path.display(),
                        parsed.profile_key()
                    )
                })?;
            let container = container.clone();
            return Ok(Store::Object {
                api: ObjectApi::Azure { account, container },
                prefix: prefix.trim_start_matches('/').to_string(),
            });
        }
        let style = s3::addressing_style(
            cred.addressing_style.map(|s| s.as_str()),
            self.env.osmo_s3_addressing_style.as_deref(),
            self.env.force_path_style.as_deref(),
        )
        .map_err(|e| e.to_string())?;
        let endpoint = cred.endpoint_url.as_deref();
        let region = cred.region.as_deref();
        let target =
            s3::resolve_target(&parsed, endpoint, region, style).map_err(|e| e.to_string())?;
        let prefix = match &parsed {
            StoreUrl::S3 { prefix, .. }
            | StoreUrl::Gs { prefix, .. }
            | StoreUrl::Tos { prefix, .. }
            | StoreUrl::Swift { prefix, .. } => prefix.trim_start_matches('/').to_string(),
            StoreUrl::File { .. } | StoreUrl::Azure { .. } => String::new(),
        };
        Ok(Store::Object {
            api: ObjectApi::S3 {
                target,
                creds: Credentials {
                    access_key_id: cred.access_key_id,
                    secret_access_key: cred.secret_access_key,
                    session_token: cred.session_token,
                },
            },
            prefix,
        })
    }
}
