//! Peak RSS of `sidewire run` downloading a listing of 1,000,000 empty objects (100
//! folders of 10,000), from a store that makes up each ListObjectsV2 page as it is asked
//! for and answers any other request 404: so the run also shows that empty objects need
//! no GET. The download's memory must follow the work in flight, not the listing.
//!
//! Run: `cargo bench --bench download_listing` (keys with `SIDEWIRE_BENCH_KEYS`, default
//! 1000000; the folder with `SIDEWIRE_BENCH_DIR`, default /dev/shm, where a million
//! file creations and flushes do not wait on a disk).

#[allow(dead_code)]
#[path = "../tests/common/http_raw.rs"]
mod http_raw;
#[allow(dead_code)]
#[path = "../tests/common/tcp_server.rs"]
mod tcp_server;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use http_raw::Head;
use tcp_server::TcpServer;

const PAGE: usize = 1000;
const PER_FOLDER: usize = 10_000;
/// The bound on the download's peak RSS.
const LIMIT_KIB: u64 = 64 << 10;

fn key(i: usize) -> String {
    format!("d{:03}/f{i:07}", i / PER_FOLDER)
}

/// One ListObjectsV2 page: keys `from..` of `total`, empty objects.
fn page(from: usize, total: usize) -> String {
    let to = (from + PAGE).min(total);
    let mut xml = String::with_capacity(200 * PAGE);
    xml.push_str(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult \
         xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bench</Name><Prefix></Prefix>",
    );
    xml.push_str(&format!(
        "<KeyCount>{}</KeyCount><MaxKeys>{PAGE}</MaxKeys><IsTruncated>{}</IsTruncated>",
        to - from,
        to < total
    ));
    if to < total {
        xml.push_str(&format!(
            "<NextContinuationToken>{to}</NextContinuationToken>"
        ));
    }
    for i in from..to {
        xml.push_str(&format!(
            "<Contents><Key>{}</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified>\
             <ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag><Size>0</Size>\
             <StorageClass>STANDARD</StorageClass></Contents>",
            key(i)
        ));
    }
    xml.push_str("</ListBucketResult>");
    xml
}

/// Answers listings; anything else is a 404 that fails the download.
fn serve(stream: TcpStream, total: usize, other_requests: &AtomicUsize) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut raw = Vec::new();
        while http_raw::head_end(&raw).is_none() {
            match reader
                .by_ref()
                .take(http_raw::MAX_HEAD as u64)
                .read_until(b'\n', &mut raw)
            {
                Ok(0) | Err(_) => return,
                Ok(_) if raw.len() > http_raw::MAX_HEAD => return,
                Ok(_) => {}
            }
        }
        let Ok(head) = Head::parse(&raw) else { return };
        let query = head.query().unwrap_or_default();
        let listing = query.iter().any(|(k, v)| k == "list-type" && v == "2");
        let (status, body) = if head.method == "GET" && listing {
            let from = query
                .iter()
                .find(|(k, _)| k == "continuation-token")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            (200, page(from, total))
        } else {
            other_requests.fetch_add(1, Ordering::SeqCst);
            (
                404,
                "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code>\
                 <Message>this store only lists</Message></Error>"
                    .to_string(),
            )
        };
        let answer = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let total: usize = std::env::var("SIDEWIRE_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let base = std::env::var_os("SIDEWIRE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let shm = PathBuf::from("/dev/shm");
            if shm.is_dir() {
                shm
            } else {
                std::env::temp_dir()
            }
        });
    let work = base.join(format!("sidewire-bench-listing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let other_requests = Arc::new(AtomicUsize::new(0));
    let server = {
        let other = other_requests.clone();
        TcpServer::start(move |stream| serve(stream, total, &other))
    };
    std::fs::write(
        work.join("credentials.yaml"),
        format!(
            "auth:\n  data:\n    s3://bench:\n      access_key_id: AKIDBENCH\n      access_key: bench-secret\n      override_url: http://127.0.0.1:{}\n      addressing_style: path\n",
            server.port()
        ),
    )
    .unwrap();
    println!(
        "downloading a listing of {total} empty objects into {}",
        work.display()
    );
    let out = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/measure.py"))
        .args([
            env!("CARGO_BIN_EXE_sidewire"),
            "run",
            &format!("-workdir={}", work.display()),
            "-input=url:in,s3://bench,",
            "--",
            "true",
        ])
        .output()
        .expect("python3");
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("measure.py output");
    assert_eq!(v["code"], 0, "the download failed: {}", v["stderr"]);
    let files = std::fs::read_dir(work.join("input/in"))
        .unwrap()
        .flatten()
        .map(|d| std::fs::read_dir(d.path()).map_or(0, |f| f.count()))
        .sum::<usize>();
    let peak = v["max_rss_kib"].as_u64().unwrap();
    println!(
        "{files} files in {:.1} s (CPU {:.1} s), peak RSS {:.1} MiB (limit {} MiB), {} requests other than listings",
        v["seconds"].as_f64().unwrap(),
        v["cpu_user"].as_f64().unwrap() + v["cpu_sys"].as_f64().unwrap(),
        peak as f64 / 1024.0,
        LIMIT_KIB >> 10,
        other_requests.load(Ordering::SeqCst)
    );
    let _ = std::fs::remove_dir_all(&work);
    assert_eq!(files, total, "every object became a file");
    assert_eq!(
        other_requests.load(Ordering::SeqCst),
        0,
        "empty objects need no GET"
    );
    assert!(peak < LIMIT_KIB, "peak RSS {peak} KiB");
}
