//! Shared pieces of the data-plane tests: a task run through `sidewire run` with
//! upstream-form specs, its credential file, and files with position-dependent content
//! (so a byte written at the wrong offset shows).
// Shared by several test binaries, each using part of it.
#![allow(dead_code)]

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const KEY: &str = "AKIDSIDEWIRETEST";
pub const SECRET: &str = "sidewire-test-secret-0123456789";
pub const MIB: u64 = 1 << 20;

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sidewire-data-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Writes the credential file `sidewire run` reads, for bucket `bucket` at `endpoint`.
pub fn write_credentials(workdir: &Path, bucket: &str, endpoint: &str, secret: &str) {
    fs::create_dir_all(workdir).unwrap();
    let yaml = format!(
        "auth:\n  data:\n    s3://{bucket}:\n      access_key_id: {KEY}\n      access_key: {secret}\n      override_url: {endpoint}\n      region: us-east-1\n      addressing_style: path\n"
    );
    fs::write(workdir.join("credentials.yaml"), yaml).unwrap();
}

/// `sidewire run` in `workdir` with the given `-input`/`-output` specs, running `cmd`.
pub fn run(workdir: &Path, inputs: &[String], outputs: &[String], cmd: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sidewire"));
    c.arg("run").arg(format!("-workdir={}", workdir.display()));
    for i in inputs {
        c.arg(format!("-input={i}"));
    }
    for o in outputs {
        c.arg(format!("-output={o}"));
    }
    c.arg("--").args(cmd);
    c.output().expect("sidewire run")
}

pub fn describe(out: &Output) -> String {
    format!(
        "code {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A file of `size` bytes whose every 8-byte word holds its own offset xor `seed`.
pub fn write_pattern(path: &Path, size: u64, seed: u64) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
    let mut offset = 0u64;
    while offset < size {
        let word = (offset ^ seed).to_le_bytes();
        let n = (size - offset).min(8) as usize;
        w.write_all(&word[..n]).unwrap();
        offset += 8;
    }
    w.flush().unwrap();
}

/// Whether two files hold the same bytes (compared a MiB at a time).
pub fn same_content(a: &Path, b: &Path) -> bool {
    use std::io::Read;
    let (Ok(mut fa), Ok(mut fb)) = (File::open(a), File::open(b)) else {
        return false;
    };
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let na = read_full(&mut fa, &mut ba);
        let nb = read_full(&mut fb, &mut bb);
        if na != nb || ba[..na] != bb[..nb] {
            return false;
        }
        if na == 0 {
            return true;
        }
    }
    fn read_full(f: &mut File, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() {
            match f.read(&mut buf[n..]) {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k,
            }
        }
        n
    }
}

/// Every regular file under `root`, relative, sorted.
pub fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// How much of `path` is in the page cache, by util-linux's `fincore`.
pub fn cached_bytes(path: &Path) -> u64 {
    let out = std::process::Command::new("fincore")
        .args(["--bytes", "--noheadings", "--output", "RES"])
        .arg(path)
        .output()
        .expect("fincore (util-linux)");
    assert!(out.status.success(), "fincore: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("fincore said {text:?}"))
}
