//! Upload and download throughput, CPU seconds per GiB and peak RSS of sidewire against
//! boto3 (`upload_file`/`download_file`, what upstream's data CLI uses), both moving the
//! same file to and from the same in-process S3 server (s3s-fs) in the same run.
//! sidewire's upload is measured twice: with the payload's SHA-256 signed (its default
//! over plain HTTP) and unsigned (its default over TLS).
//!
//! Run: `scripts/bench-deps && cargo bench --bench data_transfer` (size with
//! `SIDEWIRE_BENCH_MIB`, default 2048).

#[path = "../tests/common/s3_server.rs"]
mod s3_server;

use std::path::{Path, PathBuf};
use std::process::Command;

use s3_server::S3Server;

const KEY: &str = "AKIDSIDEWIREBENCH";
const SECRET: &str = "sidewire-bench-secret";

struct Figures {
    seconds: f64,
    cpu: f64,
    max_rss_kib: u64,
    /// CPU seconds this process (the in-process S3 server) spent meanwhile.
    server_cpu: f64,
}

/// CPU seconds this process has used so far (all its threads), from /proc/self/stat.
fn own_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: Vec<f64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|v| v.parse().expect("clock ticks"))
        .collect();
    // The kernel reports these in USER_HZ, 100 on every Linux architecture.
    ticks.iter().sum::<f64>() / 100.0
}

/// CPU seconds per GiB SHA-256 costs on this machine: SigV4 over the payload hash makes
/// both clients spend at least this much on every byte they upload over plain HTTP.
fn sha256_floor() -> f64 {
    use sha2::Digest;
    // One cache-resident MiB, hashed 1024 times: the hash alone, no memory traffic.
    let block = vec![0x5au8; 1 << 20];
    let start = std::time::Instant::now();
    let mut hasher = sha2::Sha256::new();
    for _ in 0..1024 {
        hasher.update(&block);
    }
    std::hint::black_box(hasher.finalize());
    start.elapsed().as_secs_f64()
}

fn measure(args: &[String]) -> Figures {
    let server_before = own_cpu_seconds();
    let out = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/measure.py"))
        .args(args)
        .output()
        .expect("python3");
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("measure.py output");
    assert_eq!(v["code"], 0, "{args:?} failed: {}", v["stderr"]);
    Figures {
        seconds: v["seconds"].as_f64().unwrap(),
        cpu: v["cpu_user"].as_f64().unwrap() + v["cpu_sys"].as_f64().unwrap(),
        max_rss_kib: v["max_rss_kib"].as_u64().unwrap(),
        server_cpu: own_cpu_seconds() - server_before,
    }
}

fn write_pattern(path: &Path, size: u64) {
    use std::io::Write;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut word = 0u64;
    while word * 8 < size {
        w.write_all(&(word.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes())
            .unwrap();
        word += 1;
    }
    w.flush().unwrap();
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(size)
        .unwrap();
}

fn sidewire_run(workdir: &Path, flags: &[&str], spec: &str) -> Vec<String> {
    let mut argv = vec![
        env!("CARGO_BIN_EXE_sidewire").to_string(),
        "run".into(),
        format!("-workdir={}", workdir.display()),
    ];
    argv.extend(flags.iter().map(|f| f.to_string()));
    argv.extend([spec.to_string(), "--".into(), "true".into()]);
    argv
}

fn boto3(mode: &str, endpoint: &str, key: &str, file: &Path) -> Vec<String> {
    [
        "python3",
        concat!(env!("CARGO_MANIFEST_DIR"), "/benches/boto3_transfer.py"),
        "--endpoint",
        endpoint,
        "--bucket",
        "bench",
        "--key",
        key,
        "--file",
        &file.display().to_string(),
        "--mode",
        mode,
        "--access-key",
        KEY,
        "--secret",
        SECRET,
    ]
    .map(String::from)
    .to_vec()
}

fn report(name: &str, f: &Figures, bytes: u64) -> (f64, f64) {
    let gib = bytes as f64 / (1u64 << 30) as f64;
    let mbs = bytes as f64 / 1e6 / f.seconds;
    let cpu_per_gib = f.cpu / gib;
    println!(
        "{name:<20} {mbs:>9.1} MB/s {cpu_per_gib:>8.2} CPU-s/GiB {:>8.1} MiB peak RSS {:>7.2} s {:>8.2}",
        f.max_rss_kib as f64 / 1024.0,
        f.seconds,
        f.server_cpu / gib,
    );
    (mbs, cpu_per_gib)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mib: u64 = std::env::var("SIDEWIRE_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2048);
    let size = mib << 20;
    let root: PathBuf = std::env::temp_dir().join(format!("sidewire-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let s3 = S3Server::start(KEY, SECRET);
    s3.create_bucket("bench");
    let creds = format!(
        "auth:\n  data:\n    s3://bench:\n      access_key_id: {KEY}\n      access_key: {SECRET}\n      override_url: {}\n      addressing_style: path\n",
        s3.endpoint()
    );
    let up = root.join("up");
    let down = root.join("down");
    for dir in [&up, &down] {
        std::fs::create_dir_all(dir.join("output")).unwrap();
        std::fs::write(dir.join("credentials.yaml"), &creds).unwrap();
    }
    let source = up.join("output/data.bin");
    write_pattern(&source, size);
    println!(
        "moving one {mib} MiB file through s3s-fs on loopback ({} CPUs)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let sw_up = measure(&sidewire_run(&up, &[], "-output=url:s3://bench/sidewire,"));
    // What sidewire does over TLS (UNSIGNED-PAYLOAD, the CRC64NVME covering the bytes),
    // here over plain HTTP, where it signs the SHA-256 unless told not to.
    let sw_up_unsigned = measure(&sidewire_run(
        &up,
        &["-payloadSigning=unsigned"],
        "-output=url:s3://bench/unsigned,",
    ));
    let sw_down = measure(&sidewire_run(
        &down,
        &[],
        "-input=url:in,s3://bench/sidewire,",
    ));
    assert_eq!(
        std::fs::read(&source).map(|v| v.len()).ok(),
        std::fs::metadata(down.join("input/in/data.bin"))
            .ok()
            .map(|m| m.len() as usize)
    );
    let boto_file = root.join("boto-down.bin");
    let b_up = measure(&boto3("upload", &s3.endpoint(), "boto3/data.bin", &source));
    let b_down = measure(&boto3(
        "download",
        &s3.endpoint(),
        "boto3/data.bin",
        &boto_file,
    ));

    println!();
    println!(
        "{:<20} {:>14} {:>18} {:>18} {:>9} {:>8}",
        "", "throughput", "client CPU", "client RSS", "wall", "server CPU-s/GiB"
    );
    let (su, scu) = report("sidewire upload", &sw_up, size);
    let (suu, scuu) = report("  unsigned payload", &sw_up_unsigned, size);
    let (bu, bcu) = report("boto3 upload", &b_up, size);
    let (sd, scd) = report("sidewire download", &sw_down, size);
    let (bd, bcd) = report("boto3 download", &b_down, size);
    println!();
    println!(
        "upload:   {:.2}x boto3's throughput, {:.2}x its CPU per GiB",
        su / bu,
        scu / bcu
    );
    println!(
        "upload, unsigned payload: {:.2}x boto3's throughput, {:.2}x its CPU per GiB",
        suu / bu,
        scuu / bcu
    );
    println!(
        "download: {:.2}x boto3's throughput, {:.2}x its CPU per GiB",
        sd / bd,
        scd / bcd
    );
    let floor = sha256_floor();
    println!(
        "SHA-256 here: {floor:.2} CPU-s/GiB, which SigV4 payload signing costs both clients on upload \
         (a third of boto3's upload CPU would be {:.2})",
        bcu / 3.0
    );
    println!(
        "sidewire peak RSS: {:.1} MiB (upload), {:.1} MiB (download)",
        sw_up.max_rss_kib as f64 / 1024.0,
        sw_down.max_rss_kib as f64 / 1024.0
    );
    drop(s3);
    let _ = std::fs::remove_dir_all(&root);
}
