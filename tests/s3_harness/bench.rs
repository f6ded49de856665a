//! Runs benches/boto3_transfer.py against the in-process server, both ways. Ignored:
//! it moves S3_BENCH_MIB MiB (default 1024) and wants a release build, e.g.
//! `cargo test --release --test s3_harness -- --ignored --nocapture boto3_baseline`.

use std::io::Write;
use std::process::Command;

use crate::s3_server::S3Server;

fn run(server: &S3Server, mode: &str, file: &std::path::Path) -> serde_json::Value {
    let output = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/boto3_transfer.py"
        ))
        .args([
            "--endpoint",
            &server.endpoint(),
            "--bucket",
            "bench",
            "--key",
            "blob",
        ])
        .arg("--file")
        .arg(file)
        .args([
            "--mode",
            mode,
            "--access-key",
            "AKIDBENCH",
            "--secret",
            "bench-secret",
        ])
        .output()
        .expect("run python3 benches/boto3_transfer.py");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON line")
}

#[test]
#[ignore = "moves a GiB; run on purpose in release mode"]
fn boto3_baseline() {
    let mib: usize = std::env::var("S3_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let server = S3Server::start("AKIDBENCH", "bench-secret");
    server.create_bucket("bench");
    let dir = std::env::temp_dir().join(format!("sidewire-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let src = dir.join("src.bin");
    {
        let mut f = std::fs::File::create(&src).expect("source file");
        // Incompressible-looking, cheap to make: a counter pattern per MiB.
        let mut block = vec![0u8; 1 << 20];
        for i in 0..mib {
            for (j, b) in block.iter_mut().enumerate() {
                *b = (j as u8).wrapping_mul(31).wrapping_add(i as u8);
            }
            f.write_all(&block).expect("write source");
        }
    }
    let bytes = (mib << 20) as f64;
    for (mode, file) in [("upload", &src), ("download", &dir.join("dst.bin"))] {
        let r = run(&server, mode, file);
        let seconds = r["seconds"].as_f64().expect("seconds");
        let cpu = r["cpu_user"].as_f64().expect("user") + r["cpu_sys"].as_f64().expect("sys");
        assert_eq!(r["bytes"].as_f64(), Some(bytes), "{r}");
        eprintln!(
            "boto3 {mode}: {r} -> {:.0} MB/s, {:.2} CPU s/GiB (client only)",
            bytes / seconds / 1e6,
            cpu / (bytes / (1u64 << 30) as f64)
        );
    }
    let same =
        std::fs::read(&src).expect("src") == std::fs::read(dir.join("dst.bin")).expect("dst");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(same, "downloaded copy differs");
}
