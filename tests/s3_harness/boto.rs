//! Runs Python boto3 snippets against a server: boto3 is the SigV4 client these
//! harness tests use (the crate has none of its own). `scripts/bench-deps` installs it.

use std::process::Command;

/// Builds `s3` (a boto3 client, path-style, no retries so faults stay visible) from
/// the environment, runs `body`, and prints the JSON value the body leaves in `out`.
const PRELUDE: &str = r#"
import json, os, sys, hashlib
import boto3, botocore
from botocore.config import Config
s3 = boto3.client('s3', endpoint_url=os.environ['S3_ENDPOINT'],
    aws_access_key_id=os.environ['S3_ACCESS_KEY'],
    aws_secret_access_key=os.environ['S3_SECRET'], region_name='us-east-1',
    config=Config(s3={'addressing_style': os.environ.get('S3_STYLE', 'path')},
                  retries={'total_max_attempts': 1, 'mode': 'standard'},
                  connect_timeout=5, read_timeout=30))
def code(fn, tries=3):
    # s3s-fs may close a kept-alive connection after an error answer while boto3 reuses
    # it; that race says nothing about the answer, so the call is made again. The same
    # race can cut an error answer after its status line: botocore then reports the bare
    # status as the code, and the call is made again too.
    try:
        fn()
        return 'ok'
    except botocore.exceptions.ClientError as e:
        got = e.response['Error']['Code']
        if got.isdigit() and tries > 1:
            return code(fn, tries - 1)
        return got
    except (botocore.exceptions.ConnectionClosedError, botocore.exceptions.EndpointConnectionError):
        if tries <= 1:
            raise
        return code(fn, tries - 1)
out = None
"#;

/// Output of a boto3 snippet: its `out` value as JSON.
pub fn run(endpoint: &str, access_key: &str, secret: &str, body: &str) -> serde_json::Value {
    run_styled(endpoint, access_key, secret, "path", body)
}

pub fn run_styled(
    endpoint: &str,
    access_key: &str,
    secret: &str,
    style: &str,
    body: &str,
) -> serde_json::Value {
    let script = format!("{PRELUDE}\n{body}\nprint(json.dumps(out))\n");
    let output = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .env("S3_ENDPOINT", endpoint)
        .env("S3_ACCESS_KEY", access_key)
        .env("S3_SECRET", secret)
        .env("S3_STYLE", style)
        .output()
        .expect("run python3 (install boto3 with scripts/bench-deps)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "boto3 snippet failed: {}\n{}\n--- script ---\n{body}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("boto3 snippet printed {stdout:?}: {e}"))
}
