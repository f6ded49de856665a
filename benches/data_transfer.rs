//! Upload and download throughput, CPU seconds per GiB and peak RSS of sidewire against
//! boto3 (`upload_file`/`download_file`, what upstream's data CLI uses, with botocore's
//! own checksum defaults), both moving the same file to and from the same S3 server
//! (s3s-fs) in the same run, over plain HTTP and over TLS.
//!
//! The server runs in a process of its own (this bench run again with
//! `SIDEWIRE_BENCH_SERVE` set), with a TLS front (rustls, a private CA both clients
//! trust) beside its plain port, so its CPU per GiB is measured apart from the clients'.
//! sidewire's upload over plain HTTP is measured twice: with the payload's SHA-256
//! signed (its default there) and unsigned (its default over TLS).
//!
//! Run: `scripts/bench-deps && cargo bench --bench data_transfer` (size with
//! `SIDEWIRE_BENCH_MIB`, default 2048).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/common/s3_server.rs"]
mod s3_server;
#[path = "data_transfer/server.rs"]
mod server;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use common::fake_ctrl::cpu_seconds;
use common::tls_service::TlsFront;
use s3_server::S3Server;

const KEY: &str = "AKIDSIDEWIREBENCH";
const SECRET: &str = "sidewire-bench-secret";

struct Figures {
    seconds: f64,
    cpu: f64,
    max_rss_kib: u64,
    /// CPU seconds the server process spent meanwhile.
    server_cpu: f64,
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

fn measure(server: &Server, args: &[String]) -> Figures {
    let server_before = cpu_seconds(server.child.id());
    let out = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/measure.py"))
        .args(args)
        .env("SSL_CERT_FILE", &server.ca)
        .output()
        .expect("python3");
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("measure.py output");
    assert_eq!(v["code"], 0, "{args:?} failed: {}", v["stderr"]);
    Figures {
        seconds: v["seconds"].as_f64().unwrap(),
        cpu: v["cpu_user"].as_f64().unwrap() + v["cpu_sys"].as_f64().unwrap(),
        max_rss_kib: v["max_rss_kib"].as_u64().unwrap(),
        server_cpu: cpu_seconds(server.child.id()) - server_before,
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

fn boto3(mode: &str, endpoint: &str, ca: &Path, key: &str, file: &Path) -> Vec<String> {
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
        "--ca-bundle",
        &ca.display().to_string(),
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

/// The S3 server in its own process: its plain and TLS endpoints and the CA to trust.
struct Server {
    child: Child,
    /// Closing it ends the server.
    _stdin: ChildStdin,
    plain: String,
    tls: String,
    ca: PathBuf,
}

impl Server {
    fn start(root: &Path) -> Server {
        let ca = root.join("ca.pem");
        let mut child = Command::new(std::env::current_exe().expect("the bench's path"))
            .env("SIDEWIRE_BENCH_SERVE", &ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the server process");
        let stdin = child.stdin.take().expect("its stdin");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("its stdout"))
            .read_line(&mut line)
            .expect("the server's ports");
        let ports: Vec<u16> = line
            .split_whitespace()
            .map(|p| p.parse().expect("a port"))
            .collect();
        Server {
            child,
            _stdin: stdin,
            plain: format!("http://127.0.0.1:{}", ports[0]),
            tls: format!("https://127.0.0.1:{}", ports[1]),
            ca,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server process: s3s-fs with bucket `bench`, a TLS front beside it, the CA written
/// to `ca`; prints the two ports and serves until its stdin closes.
fn serve(ca: &Path) {
    let s3 = S3Server::start_wrapped(KEY, SECRET, server::FastFs::new);
    s3.create_bucket("bench");
    let front = TlsFront::start(s3.port);
    std::fs::write(ca, front.ca_pem()).expect("write the CA");
    println!("{} {}", s3.port, front.port());
    std::io::stdout().flush().expect("stdout");
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut rest);
}

/// The four transfers over `endpoint`, with sidewire's upload also unsigned when `extra`.
fn run_over(server: &Server, endpoint: &str, label: &str, root: &Path, size: u64, extra: bool) {
    let creds = format!(
        "auth:\n  data:\n    s3://bench:\n      access_key_id: {KEY}\n      access_key: {SECRET}\n      override_url: {endpoint}\n      addressing_style: path\n"
    );
    let up = root.join(format!("{label}-up"));
    let down = root.join(format!("{label}-down"));
    for dir in [&up, &down] {
        std::fs::create_dir_all(dir.join("output")).unwrap();
        std::fs::write(dir.join("credentials.yaml"), &creds).unwrap();
    }
    let source = root.join("data.bin");
    std::fs::hard_link(&source, up.join("output/data.bin")).unwrap();
    let prefix = format!("{label}-sidewire");
    let sw_up = measure(
        server,
        &sidewire_run(&up, &[], &format!("-output=url:s3://bench/{prefix},")),
    );
    let sw_up_unsigned = extra.then(|| {
        measure(
            server,
            &sidewire_run(
                &up,
                &["-payloadSigning=unsigned"],
                &format!("-output=url:s3://bench/{label}-unsigned,"),
            ),
        )
    });
    let sw_down = measure(
        server,
        &sidewire_run(&down, &[], &format!("-input=url:in,s3://bench/{prefix},")),
    );
    assert_eq!(
        std::fs::metadata(down.join("input/in/data.bin"))
            .map(|m| m.len())
            .ok(),
        Some(size)
    );
    let boto_key = format!("{label}-boto3/data.bin");
    let boto_file = root.join(format!("{label}-boto-down.bin"));
    let b_up = measure(
        server,
        &boto3("upload", endpoint, &server.ca, &boto_key, &source),
    );
    let b_down = measure(
        server,
        &boto3("download", endpoint, &server.ca, &boto_key, &boto_file),
    );
    let _ = std::fs::remove_file(&boto_file);

    println!();
    let name = if label == "tls" { "TLS" } else { "plain HTTP" };
    println!("over {name} ({endpoint})");
    println!(
        "{:<20} {:>14} {:>18} {:>18} {:>9} {:>8}",
        "", "throughput", "client CPU", "client RSS", "wall", "server CPU-s/GiB"
    );
    let (su, scu) = report("sidewire upload", &sw_up, size);
    let unsigned = sw_up_unsigned
        .as_ref()
        .map(|f| report("  unsigned payload", f, size));
    let (bu, bcu) = report("boto3 upload", &b_up, size);
    let (sd, scd) = report("sidewire download", &sw_down, size);
    let (bd, bcd) = report("boto3 download", &b_down, size);
    println!(
        "upload:   {:.2}x boto3's throughput, {:.2}x its CPU per GiB",
        su / bu,
        scu / bcu
    );
    if let Some((suu, scuu)) = unsigned {
        println!(
            "upload, unsigned payload: {:.2}x boto3's throughput, {:.2}x its CPU per GiB",
            suu / bu,
            scuu / bcu
        );
    }
    println!(
        "download: {:.2}x boto3's throughput, {:.2}x its CPU per GiB",
        sd / bd,
        scd / bcd
    );
    println!(
        "sidewire peak RSS: {:.1} MiB (upload), {:.1} MiB (download)",
        sw_up.max_rss_kib as f64 / 1024.0,
        sw_down.max_rss_kib as f64 / 1024.0
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if let Some(ca) = std::env::var_os("SIDEWIRE_BENCH_SERVE") {
        return serve(Path::new(&ca));
    }
    let mib: u64 = std::env::var("SIDEWIRE_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2048);
    let size = mib << 20;
    let root: PathBuf = std::env::temp_dir().join(format!("sidewire-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    write_pattern(&root.join("data.bin"), size);
    let server = Server::start(&root);
    println!(
        "moving one {mib} MiB file through s3s-fs (its own process) on loopback ({} CPUs)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    run_over(&server, &server.plain.clone(), "http", &root, size, true);
    run_over(&server, &server.tls.clone(), "tls", &root, size, false);
    let floor = sha256_floor();
    println!();
    println!("SHA-256 here: {floor:.2} CPU-s/GiB (SigV4 payload signing costs a signing client this much on upload)");
    drop(server);
    let _ = std::fs::remove_dir_all(&root);
}
