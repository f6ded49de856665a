use super::*;

/// As the service writes a task's file (`src/utils/job/task.py:create_config_dict`, then
/// `yaml.dump`): `endpoint` in every profile, no keys where the environment has them.
const SERVICE_FILE: &str = "auth:
  data:
    azure://acct:
      access_key: DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=S3CRET+/==;EndpointSuffix=core.windows.net
      access_key_id: acct
      endpoint: azure://acct
    s3://bucket:
      access_key: S3CRET-s3
      access_key_id: AKIAEXAMPLE
      addressing_style: path
      endpoint: s3://bucket
      override_url: http://minio:9000
      region: us-west-2
    s3://bucket/team:
      access_key: S3CRET-team
      access_key_id: AKIATEAM
      endpoint: s3://bucket/team
    s3://irsa:
      endpoint: s3://irsa
      region: eu-north-1
";

fn file() -> CredentialFile {
    CredentialFile::parse(Path::new("/cfg/user.yaml"), SERVICE_FILE).unwrap()
}

fn env_keys() -> AwsEnv {
    AwsEnv {
        access_key_id: Some("ENVID".into()),
        secret_access_key: Some("S3CRET-env".into()),
        session_token: Some("S3CRET-token".into()),
        region: Some("us-east-1".into()),
        ..AwsEnv::default()
    }
}

#[test]
fn reads_the_service_file() {
    let profiles = parse_credential_file(SERVICE_FILE).unwrap();
    assert_eq!(
        profiles.keys().collect::<Vec<_>>(),
        [
            "azure://acct",
            "s3://bucket",
            "s3://bucket/team",
            "s3://irsa"
        ]
    );
    assert_eq!(
        profiles["s3://bucket"],
        ProfileEntry {
            keys: Some(("AKIAEXAMPLE".into(), "S3CRET-s3".into())),
            region: Some("us-west-2".into()),
            endpoint_url: Some("http://minio:9000".into()),
            addressing_style: Some(AddressingStyle::Path),
        }
    );
    assert_eq!(profiles["s3://irsa"].keys, None);
    // Other top-level keys, no `auth`, or an empty `data` are fine.
    assert!(parse_credential_file("login:\n  url: x\n")
        .unwrap()
        .is_empty());
    assert!(parse_credential_file("auth:\n  data: {}\n")
        .unwrap()
        .is_empty());
    assert!(parse_credential_file("").unwrap().is_empty());
    // What `osmo credential set` writes (`region: null`).
    let cli = "auth:\n  data:\n    gs://b:\n      access_key: k\n      access_key_id: '123'\n      region: null\n";
    let entry = &parse_credential_file(cli).unwrap()["gs://b"];
    assert_eq!(
        (entry.keys.clone(), entry.region.clone()),
        (Some(("123".into(), "k".into())), None)
    );
}

#[test]
fn selects_the_profile_of_the_store() {
    let file = file();
    let s3 = file.select("s3://bucket", &AwsEnv::default()).unwrap();
    assert_eq!(
        s3,
        DataCredential {
            access_key_id: "AKIAEXAMPLE".into(),
            secret_access_key: "S3CRET-s3".into(),
            session_token: None,
            region: Some("us-west-2".into()),
            endpoint_url: Some("http://minio:9000".into()),
            addressing_style: Some(AddressingStyle::Path),
        }
    );
    // A trailing slash does not matter; the profile's keys win over the environment's.
    assert_eq!(file.select("s3://bucket/", &env_keys()).unwrap(), s3);
    // The longest whole-segment prefix, when no profile is the store's own.
    let team = file
        .select("s3://bucket/team/sub", &AwsEnv::default())
        .unwrap();
    assert_eq!(team.access_key_id, "AKIATEAM");
    assert_eq!(
        file.select("s3://bucket/other", &AwsEnv::default())
            .unwrap()
            .access_key_id,
        "AKIAEXAMPLE"
    );
    // A profile written with a trailing slash (found by fuzzing: it was unreachable).
    let slash = "auth:\n  data:\n    s3://b/:\n      access_key: k\n      access_key_id: slash\n";
    let slash = CredentialFile::parse(Path::new("f"), slash).unwrap();
    for key in ["s3://b/", "s3://b", "s3://b/x"] {
        assert_eq!(
            slash.select(key, &env_keys()).unwrap().access_key_id,
            "slash",
            "{key}"
        );
    }
    let azure = file.select("azure://acct", &AwsEnv::default()).unwrap();
    assert!(azure
        .secret_access_key
        .starts_with("DefaultEndpointsProtocol=https;"));
}

#[test]
fn falls_back_to_the_environment() {
    let file = file();
    // A profile without keys: keys from the environment, region from the profile.
    let irsa = file.select("s3://irsa", &env_keys()).unwrap();
    assert_eq!(
        (
            irsa.access_key_id.as_str(),
            irsa.session_token.as_deref(),
            irsa.region.as_deref()
        ),
        ("ENVID", Some("S3CRET-token"), Some("eu-north-1"))
    );
    // No profile at all; `s3://bucketx` is not under `s3://bucket`.
    let other = file.select("s3://bucketx", &env_keys()).unwrap();
    assert_eq!(
        (other.access_key_id.as_str(), other.region.as_deref()),
        ("ENVID", Some("us-east-1"))
    );
    // Nothing usable: the error names the store and the file, not a secret.
    for env in [
        AwsEnv::default(),
        AwsEnv {
            secret_access_key: None,
            ..env_keys()
        },
    ] {
        let e = file.select("s3://irsa", &env).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("s3://irsa") && text.contains("/cfg/user.yaml"),
            "{text}"
        );
        assert!(!text.contains("S3CRET") && !format!("{e:?}").contains("S3CRET"));
    }
}

#[test]
fn addressing_style_and_endpoint_order() {
    let file = file();
    let env = |osmo: Option<&str>, force: Option<&str>| AwsEnv {
        osmo_s3_addressing_style: osmo.map(Into::into),
        force_path_style: force.map(Into::into),
        endpoint_url: Some("http://env:9000".into()),
        ..env_keys()
    };
    let style = |key: &str, env: &AwsEnv| file.select(key, env).unwrap().addressing_style;
    // The profile's, else OSMO_S3_ADDRESSING_STYLE, else AWS_S3_FORCE_PATH_STYLE.
    assert_eq!(
        style("s3://bucket", &env(Some("virtual"), None)),
        Some(AddressingStyle::Path)
    );
    assert_eq!(
        style("s3://irsa", &env(Some("virtual"), Some("true"))),
        Some(AddressingStyle::Virtual)
    );
    assert_eq!(
        style("s3://irsa", &env(None, Some("TRUE"))),
        Some(AddressingStyle::Path)
    );
    assert_eq!(style("s3://irsa", &env(None, Some("false"))), None);
    assert!(matches!(
        file.select("s3://irsa", &env(Some("sideways"), None)),
        Err(CredError::BadEnvAddressingStyle)
    ));
    // The profile's override_url, else the environment's endpoint.
    let endpoint = |key: &str| file.select(key, &env(None, None)).unwrap().endpoint_url;
    assert_eq!(
        endpoint("s3://bucket").as_deref(),
        Some("http://minio:9000")
    );
    assert_eq!(endpoint("s3://irsa").as_deref(), Some("http://env:9000"));
}

#[test]
fn bad_files_give_errors_without_secrets() {
    let profile = |fields: &str| format!("auth:\n  data:\n    s3://b:\n{fields}");
    let cases = [
        (profile("      access_key: S3CRET\n"), "access_key_id is missing"),
        (profile("      access_key_id: id\n"), "access_key is missing"),
        (profile("      access_key_id: id\n      access_key:\n"), "access_key is null"),
        (profile("      access_key_id: id\n      access_key:\n        x: S3CRET\n"), "must be a string"),
        (
            profile("      access_key_id: id\n      access_key: S3CRET\n      addressing_style: S3CRET\n"),
            "addressing_style must be virtual, path or auto",
        ),
        (profile("      access_key: \"S3CRET\\q\"\n"), "line 4: invalid escape"),
        (profile("      access_key: S3CRET: x\n"), "line 4: `: `"),
        (profile("      access_key: 'S3CRET\n"), "line 4: quoted value is not closed"),
        ("auth: S3CRET\n".into(), "auth is not a mapping"),
        ("auth:\n  data: S3CRET\n".into(), "auth.data is not a mapping"),
        ("auth:\n  data:\n    s3://b: S3CRET\n".into(), "profile \"s3://b\" is not a mapping"),
    ];
    for (text, expected) in cases {
        let e = CredentialFile::parse(Path::new("/cfg/user.yaml"), &text).expect_err(&text);
        let shown = e.to_string();
        assert!(
            shown.contains(expected) && shown.contains("/cfg/user.yaml"),
            "{shown}"
        );
        assert!(
            !shown.contains("S3CRET") && !format!("{e:?}").contains("S3CRET"),
            "{shown}"
        );
    }
}

#[test]
fn debug_output_redacts_secrets() {
    let file = file();
    let cred = file.select("s3://irsa", &env_keys()).unwrap();
    for shown in [
        format!("{cred:?}"),
        format!("{file:?}"),
        format!("{:?}", env_keys()),
    ] {
        assert!(!shown.contains("S3CRET"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
    assert!(format!("{cred:?}").contains("ENVID"));
}

/// A fresh directory under the system temp dir for one test.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sidewire-creds-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn load_and_publish() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch_dir("load");
    let source = dir.join("user.yaml");
    // A missing file holds no profiles; one that cannot be read is an error naming it.
    assert!(CredentialFile::load(&source).unwrap().profiles.is_empty());
    let e = CredentialFile::load(&dir).unwrap_err();
    assert!(matches!(e, CredError::Io { .. }) && e.to_string().contains(dir.to_str().unwrap()));
    std::fs::write(&source, SERVICE_FILE).unwrap();
    assert_eq!(
        CredentialFile::load(&source).unwrap().profiles,
        file().profiles
    );

    // Published as config.yaml, mode 0600, over an older file with a wider mode.
    let config_dir = dir.join("osmo/config");
    publish_config(&source, None).unwrap();
    assert!(!config_dir.exists());
    std::fs::create_dir_all(&config_dir).unwrap();
    let target = config_dir.join("config.yaml");
    std::fs::write(&target, "old").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    publish_config(&source, Some(&config_dir)).unwrap();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), SERVICE_FILE);
    assert_eq!(
        std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_dir(&config_dir).unwrap().count(),
        1,
        "no temp file left"
    );
    assert!(publish_config(&dir.join("missing.yaml"), Some(&config_dir)).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `load` on `path` in a thread: its result, or `None` if it did not return within 5 s.
fn load_within_seconds(path: PathBuf) -> Option<Result<CredentialFile, CredError>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(CredentialFile::load(&path));
    });
    rx.recv_timeout(std::time::Duration::from_secs(5)).ok()
}

#[test]
fn a_credential_file_that_is_a_fifo_or_huge_is_an_error_not_a_hang() {
    let dir = scratch_dir("special");
    let fifo = dir.join("fifo.yaml");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let e = load_within_seconds(fifo)
        .expect("loading a FIFO returns at once")
        .unwrap_err();
    assert!(e.to_string().contains("FIFO"), "{e}");

    // Two MiB of valid YAML comment: over the limit, refused before it is parsed.
    let huge = dir.join("huge.yaml");
    std::fs::write(&huge, "#".repeat(2 << 20)).unwrap();
    let e = load_within_seconds(huge.clone())
        .expect("returns")
        .unwrap_err();
    assert!(
        e.to_string().contains("too large") && e.to_string().contains(huge.to_str().unwrap()),
        "{e}"
    );
    assert!(publish_config(&huge, Some(&dir.join("config"))).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
