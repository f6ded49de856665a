//! Upload and download throughput, CPU seconds per GiB and peak RSS of sidewire against
//! boto3 (`upload_file`/`download_file`, what upstream's data CLI uses, with botocore's
//! own checksum defaults), both moving the same file to and from the same S3 server in
//! the same run, over plain HTTP and over TLS; then 10,000 objects of 64 KiB downloaded
//! by each (files per second).
//!
//! The server runs in a process of its own (this bench run again with
//! `SIDEWIRE_BENCH_SERVE` set), with a TLS front (rustls, a private CA both clients
//! trust) beside its plain port, so its CPU per GiB is measured apart from the clients'.
//! It is s3s (SigV4 and payload checks) over the bench's own backend
//! (`data_transfer/server.rs`: s3s-fs with multipart uploads taken without MD5 and
//! joined with `copy_file_range`), its folder on tmpfs; s3s-fs itself spends more CPU
//! per GiB on an upload than either client, so both clients' uploads into it are
//! printed apart, for reference. sidewire's upload over plain HTTP is measured twice:
//! with the payload's SHA-256 signed (its default there) and unsigned (its default over
//! TLS).
//!
//! Run: `scripts/bench-deps && cargo bench --bench data_transfer`. `SIDEWIRE_BENCH_MIB`
//! sets the large file's size (default 2048), `SIDEWIRE_BENCH_FILES` the number of small
//! objects (default 10000), `SIDEWIRE_BENCH_DIR` where the small files are downloaded
//! (default /dev/shm) and `SIDEWIRE_BENCH_SERVER_DIR` where the server keeps its data
//! (default /dev/shm).

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

/// The S3 server in its own process: its plain and TLS endpoints, the CA to trust and
/// its data folder.
struct Server {
    child: Child,
    /// Closing it ends the server.
    _stdin: ChildStdin,
    plain: String,
    tls: String,
    ca: PathBuf,
    data: PathBuf,
}

impl Server {
    /// `backend`: "fast" (the bench's own, `server.rs`) or "s3s-fs".
    fn start(root: &Path, backend: &str) -> Server {
        let ca = root.join(format!("ca-{backend}.pem"));
        let mut child = Command::new(std::env::current_exe().expect("the bench's path"))
            .env("SIDEWIRE_BENCH_SERVE", &ca)
            .env("SIDEWIRE_BENCH_BACKEND", backend)
            // The server's folder on tmpfs: what the figures weigh is the clients, not
            // ext4's block allocation (2 CPU-s per GiB written here).
            .env("TMPDIR", server_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the server process");
        let stdin = child.stdin.take().expect("its stdin");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("its stdout"))
            .read_line(&mut line)
            .expect("the server's ports");
        let fields: Vec<&str> = line.trim_end().splitn(3, ' ').collect();
        let port = |i: usize| fields[i].parse::<u16>().expect("a port");
        Server {
            plain: format!("http://127.0.0.1:{}", port(0)),
            tls: format!("https://127.0.0.1:{}", port(1)),
            data: PathBuf::from(fields[2]),
            child,
            _stdin: stdin,
            ca,
        }
    }

    /// Deletes the objects under `bench/<prefix>/` (straight from the folder: the
    /// server's memory is the machine's).
    fn forget(&self, prefix: &str) {
        let _ = std::fs::remove_dir_all(self.data.join("bench").join(prefix));
    }
}

/// `SIDEWIRE_BENCH_SERVER_DIR`, else /dev/shm when there is one, else the temp folder.
fn server_dir() -> PathBuf {
    std::env::var_os("SIDEWIRE_BENCH_SERVER_DIR")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/dev/shm")).filter(|p| p.is_dir()))
        .unwrap_or_else(std::env::temp_dir)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Killed, it left its folder (on tmpfs: memory) behind.
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// The server process: the backend named by `SIDEWIRE_BENCH_BACKEND` with bucket `bench`,
/// a TLS front beside it, the CA written to `ca`; prints the two ports and its data
/// folder and serves until its stdin closes.
fn serve(ca: &Path) {
    let s3 = match std::env::var("SIDEWIRE_BENCH_BACKEND").as_deref() {
        Ok("s3s-fs") => S3Server::start(KEY, SECRET),
        _ => S3Server::start_wrapped(KEY, SECRET, server::FastFs::new),
    };
    s3.create_bucket("bench");
    let front = TlsFront::start(s3.port);
    std::fs::write(ca, front.ca_pem()).expect("write the CA");
    println!("{} {} {}", s3.port, front.port(), s3.root.display());
    std::io::stdout().flush().expect("stdout");
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut rest);
}

/// A fresh workdir for `sidewire run` at `dir`: an `output` folder and credentials for
/// bucket `bench` at `endpoint`.
fn workdir(dir: &Path, endpoint: &str) -> PathBuf {
    let creds = format!(
        "auth:\n  data:\n    s3://bench:\n      access_key_id: {KEY}\n      access_key: {SECRET}\n      override_url: {endpoint}\n      addressing_style: path\n"
    );
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("output")).unwrap();
    std::fs::write(dir.join("credentials.yaml"), creds).unwrap();
    dir.to_path_buf()
}

/// The round's figures with the median time, of an upload measured in several rounds.
fn median(mut rounds: Vec<Figures>) -> Figures {
    rounds.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let middle = rounds.len() / 2;
    rounds.swap_remove(middle)
}

/// Runs the two clients' transfers of round `round`, the first one changing each round.
fn take_turns(round: usize, sidewire: &mut dyn FnMut(), boto: &mut dyn FnMut()) {
    if round.is_multiple_of(2) {
        sidewire();
        boto();
    } else {
        boto();
        sidewire();
    }
}

/// `SIDEWIRE_BENCH_ROUNDS`, default 3: how many times each upload is measured.
fn rounds() -> usize {
    std::env::var("SIDEWIRE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3)
}

/// The four transfers over `endpoint`, with sidewire's upload also unsigned when `extra`.
fn run_over(server: &Server, endpoint: &str, label: &str, root: &Path, size: u64, extra: bool) {
    let up = workdir(&root.join(format!("{label}-up")), endpoint);
    let down = workdir(&root.join(format!("{label}-down")), endpoint);
    let source = root.join("data.bin");
    std::fs::hard_link(&source, up.join("output/data.bin")).unwrap();
    // The uploads take turns, round after round, the first client changing each round,
    // and each figure is its client's median: how much fresh memory the server writes
    // into (this VM's dearest cost, see docs/benchmarks.md) then weighs on both alike.
    let prefix = format!("{label}-sidewire");
    let boto_key = format!("{label}-boto3/data.bin");
    let (mut sw_ups, mut unsigned_ups, mut b_ups) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds() {
        // Each object is deleted as soon as its upload is measured, so every upload
        // finds the server's memory in the same state.
        let mut sidewire = || {
            let signed = format!("{label}-sidewire-up");
            sw_ups.push(measure(
                server,
                &sidewire_run(
                    &up,
                    &[],
                    &format!("-output=url:s3://bench/{signed}-{round},"),
                ),
            ));
            server.forget(&format!("{signed}-{round}"));
            if extra {
                let unsigned = format!("{label}-unsigned-{round}");
                unsigned_ups.push(measure(
                    server,
                    &sidewire_run(
                        &up,
                        &["-payloadSigning=unsigned"],
                        &format!("-output=url:s3://bench/{unsigned},"),
                    ),
                ));
                server.forget(&unsigned);
            }
        };
        let mut boto = || {
            let key = format!("{label}-boto3-up/data.bin");
            b_ups.push(measure(
                server,
                &boto3("upload", endpoint, &server.ca, &key, &source),
            ));
            server.forget(&format!("{label}-boto3-up"));
        };
        take_turns(round, &mut sidewire, &mut boto);
    }
    let (sw_up, b_up) = (median(sw_ups), median(b_ups));
    let sw_up_unsigned = extra.then(|| median(unsigned_ups));
    // The objects the downloads read, each uploaded by its own client (not timed).
    measure(
        server,
        &sidewire_run(&up, &[], &format!("-output=url:s3://bench/{prefix},")),
    );
    measure(
        server,
        &boto3("upload", endpoint, &server.ca, &boto_key, &source),
    );
    // The downloads take turns the same way, each into a fresh folder.
    let boto_file = root.join(format!("{label}-boto-down.bin"));
    let (mut sw_downs, mut b_downs) = (Vec::new(), Vec::new());
    for round in 0..rounds() {
        let mut sidewire = || {
            let down = workdir(&down, endpoint);
            sw_downs.push(measure(
                server,
                &sidewire_run(&down, &[], &format!("-input=url:in,s3://bench/{prefix},")),
            ));
            let got = std::fs::metadata(down.join("input/in/data.bin")).map(|m| m.len());
            assert_eq!(got.ok(), Some(size));
            let _ = std::fs::remove_dir_all(down.join("input"));
        };
        let mut boto = || {
            b_downs.push(measure(
                server,
                &boto3("download", endpoint, &server.ca, &boto_key, &boto_file),
            ));
            let got = std::fs::metadata(&boto_file).map(|m| m.len());
            assert_eq!(got.ok(), Some(size));
            let _ = std::fs::remove_file(&boto_file);
        };
        take_turns(round, &mut sidewire, &mut boto);
    }
    server.forget(&prefix);
    server.forget(&format!("{label}-boto3"));
    let (sw_down, b_down) = (median(sw_downs), median(b_downs));

    println!();
    let name = if label == "tls" { "TLS" } else { "plain HTTP" };
    println!(
        "over {name} ({endpoint}); each figure the median of {} rounds",
        rounds()
    );
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

/// Both clients' uploads over TLS into s3s-fs itself (the backend the tests use), for
/// its throughput and server CPU beside the bench's own backend.
fn s3s_fs_uploads(root: &Path, size: u64) {
    let server = Server::start(root, "s3s-fs");
    let up = workdir(&root.join("s3s-fs-up"), &server.tls);
    std::fs::hard_link(root.join("data.bin"), up.join("output/data.bin")).unwrap();
    let sw = measure(
        &server,
        &sidewire_run(&up, &[], "-output=url:s3://bench/s3s-fs-sidewire,"),
    );
    server.forget("s3s-fs-sidewire");
    let source = root.join("data.bin");
    let key = "s3s-fs-boto3/data.bin";
    let b = measure(
        &server,
        &boto3("upload", &server.tls, &server.ca, key, &source),
    );
    println!();
    println!(
        "uploads over TLS into s3s-fs itself (MD5 of every part, parts read back at completion)"
    );
    let (s, _) = report("sidewire upload", &sw, size);
    let (bu, _) = report("boto3 upload", &b, size);
    println!("upload:   {:.2}x boto3's throughput", s / bu);
}

/// The size of each small object.
const SMALL: usize = 64 << 10;

/// `count` files of [`SMALL`] bytes, each its own, in `dir`.
fn write_small_files(dir: &Path, count: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let mut body = vec![0u8; SMALL];
    for i in 0..count {
        for (j, word) in body.chunks_mut(8).enumerate() {
            let n = (i * SMALL / 8 + j) as u64;
            word.copy_from_slice(&n.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
        }
        std::fs::write(dir.join(format!("f{i:05}.bin")), &body).unwrap();
    }
}

/// The files under `dir` and their bytes.
fn count_files(dir: &Path) -> (usize, u64) {
    let mut found = (0, 0);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            let (n, bytes) = count_files(&entry.path());
            found = (found.0 + n, found.1 + bytes);
        } else {
            found = (found.0 + 1, found.1 + meta.len());
        }
    }
    found
}

fn report_files(name: &str, f: &Figures, count: usize) -> f64 {
    let per_s = count as f64 / f.seconds;
    println!(
        "{name:<20} {per_s:>9.0} files/s {:>7.2} client CPU-ms/file {:>8.1} MiB peak RSS {:>7.2} s {:>7.2} server CPU-ms/file",
        f.cpu * 1e3 / count as f64,
        f.max_rss_kib as f64 / 1024.0,
        f.seconds,
        f.server_cpu * 1e3 / count as f64,
    );
    per_s
}

/// sidewire and boto3 each downloading the `count` objects under `bench/small/` over
/// `endpoint` into folders under `base`.
fn small_over(server: &Server, endpoint: &str, label: &str, base: &Path, count: usize) {
    let expected = (count, (count * SMALL) as u64);
    let sw = workdir(&base.join(format!("{label}-sidewire")), endpoint);
    let sw_down = measure(
        server,
        &sidewire_run(&sw, &[], "-input=url:in,s3://bench/small,"),
    );
    assert_eq!(count_files(&sw.join("input")), expected);
    let _ = std::fs::remove_dir_all(&sw);
    let boto_dir = base.join(format!("{label}-boto3"));
    let b_down = measure(
        server,
        &boto3("download-prefix", endpoint, &server.ca, "small/", &boto_dir),
    );
    assert_eq!(count_files(&boto_dir), expected);
    let _ = std::fs::remove_dir_all(&boto_dir);

    println!();
    let name = if label == "tls" { "TLS" } else { "plain HTTP" };
    println!("{count} objects of 64 KiB over {name}");
    let s = report_files("sidewire download", &sw_down, count);
    let b = report_files("boto3 download", &b_down, count);
    println!("download: {:.2}x boto3's files/s", s / b);
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
    let server = Server::start(&root, "fast");
    println!(
        "moving one {mib} MiB file through the bench's S3 backend (s3s; its own process, data on {}) on loopback ({} CPUs)",
        server_dir().display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    run_over(&server, &server.plain.clone(), "http", &root, size, true);
    run_over(&server, &server.tls.clone(), "tls", &root, size, false);
    s3s_fs_uploads(&root, size);

    // Small files: written once, uploaded once by sidewire, downloaded by each client.
    // Their folders are on tmpfs (SIDEWIRE_BENCH_DIR), as in the download_listing bench:
    // sidewire flushes every file it downloads, which on ext4 sets the pace.
    let count: usize = std::env::var("SIDEWIRE_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let base = std::env::var_os("SIDEWIRE_BENCH_DIR")
        .map_or_else(|| PathBuf::from("/dev/shm"), PathBuf::from)
        .join(format!("sidewire-bench-small-{}", std::process::id()));
    let up = workdir(&base.join("up"), &server.plain);
    write_small_files(&up.join("output"), count);
    let sw_up = measure(
        &server,
        &sidewire_run(&up, &[], "-output=url:s3://bench/small,"),
    );
    println!();
    println!("{count} objects of 64 KiB, uploaded once over plain HTTP");
    report_files("sidewire upload", &sw_up, count);
    let _ = std::fs::remove_dir_all(&up);
    small_over(&server, &server.plain.clone(), "http", &base, count);
    small_over(&server, &server.tls.clone(), "tls", &base, count);
    let _ = std::fs::remove_dir_all(&base);
    let floor = sha256_floor();
    println!();
    println!("SHA-256 here: {floor:.2} CPU-s/GiB (SigV4 payload signing costs a signing client this much on upload)");
    drop(server);
    let _ = std::fs::remove_dir_all(&root);
}
