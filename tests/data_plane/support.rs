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

/// The tree of round-trip files: empty, one byte, just under 5 MiB, just over
/// 64 MiB, 300 MiB, in nested folders.
pub const TREE: &[(&str, u64)] = &[
    ("empty.bin", 0),
    ("one.bin", 1),
    ("a/five.bin", 5 * MIB - 1),
    ("a/b/sixty-four.bin", 64 * MIB + 1),
    ("big/three-hundred.bin", 300 * MIB),
];

/// A small xorshift generator: kill moments differ per run, and the seed is printed.
pub struct Rng(u64);

impl Rng {
    /// Seeded from the clock; prints the seed, so a failing run can be told apart.
    pub fn from_clock() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        println!("kill moments from seed {seed}");
        Rng(seed)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sidewire-data-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Writes the credential file `sidewire run` reads, for bucket `bucket` at `endpoint`.
pub fn write_credentials(workdir: &Path, bucket: &str, endpoint: &str, secret: &str) {
    write_profile(workdir, &format!("s3://{bucket}"), endpoint, secret);
}

/// As [`write_credentials`], for the profile named `profile` (`swift://host/AUTH_ns`, ...).
pub fn write_profile(workdir: &Path, profile: &str, endpoint: &str, secret: &str) {
    fs::create_dir_all(workdir).unwrap();
    let yaml = format!(
        "auth:\n  data:\n    {profile}:\n      access_key_id: {KEY}\n      access_key: {secret}\n      override_url: {endpoint}\n      region: us-east-1\n      addressing_style: path\n"
    );
    fs::write(workdir.join("credentials.yaml"), yaml).unwrap();
}

/// `sidewire run` in `workdir` with the given `-input`/`-output` specs, running `cmd`.
pub fn run(workdir: &Path, inputs: &[String], outputs: &[String], cmd: &[&str]) -> Output {
    run_with(workdir, &[], inputs, outputs, cmd)
}

/// [`run`] with more flags (`-payloadSigning=unsigned`, ...) before the specs.
pub fn run_with(
    workdir: &Path,
    flags: &[&str],
    inputs: &[String],
    outputs: &[String],
    cmd: &[&str],
) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sidewire"));
    c.arg("run").arg(format!("-workdir={}", workdir.display()));
    c.args(flags);
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

/// Bytes that exist only outside the output folder: none may reach a store.
pub const SECRET_BYTES: &[u8] = b"SIDEWIRE-SECRET-7f3a9c-NEVER-UPLOADED";

/// What [`plant_escapes`] put outside the output folder, and the links to it.
pub struct Escapes {
    /// A secret file and a secret folder, outside the output folder.
    pub file: PathBuf,
    pub folder: PathBuf,
    /// The names (relative to the output folder) every log must name as skipped.
    pub skipped: Vec<&'static str>,
}

/// Fills `output` with `real.txt` ("inside"), a link to it (`inside-link`), and links that
/// must be skipped: to a secret file outside (absolute and relative), to a secret folder
/// outside, and one that dangles. The secrets go in `outside`.
pub fn plant_escapes(output: &Path, outside: &Path) -> Escapes {
    use std::os::unix::fs::symlink;
    let file = outside.join("secret.txt");
    let folder = outside.join("secret-folder");
    fs::create_dir_all(&folder).unwrap();
    fs::create_dir_all(output.join("sub")).unwrap();
    fs::write(&file, SECRET_BYTES).unwrap();
    fs::write(folder.join("key.pem"), SECRET_BYTES).unwrap();
    fs::write(output.join("sub/real.txt"), b"inside").unwrap();
    symlink("sub/real.txt", output.join("inside-link")).unwrap();
    symlink(&file, output.join("to-secret-file")).unwrap();
    let up = std::iter::repeat_n("..", output.components().count()).collect::<Vec<_>>();
    symlink(
        Path::new(&up.join("/")).join(file.strip_prefix("/").unwrap()),
        output.join("sub/relative-to-secret"),
    )
    .unwrap();
    symlink(&folder, output.join("to-secret-folder")).unwrap();
    symlink("no-such-file", output.join("dangling")).unwrap();
    Escapes {
        file,
        folder,
        skipped: vec![
            "to-secret-file",
            "sub/relative-to-secret",
            "to-secret-folder",
            "dangling",
        ],
    }
}

/// Every file under `root` whose bytes hold [`SECRET_BYTES`].
pub fn holding_secret(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let kind = e.file_type().unwrap();
            if kind.is_dir() {
                stack.push(p);
            } else if kind.is_file() {
                let bytes = fs::read(&p).unwrap_or_default();
                if bytes.windows(SECRET_BYTES.len()).any(|w| w == SECRET_BYTES) {
                    found.push(p);
                }
            }
        }
    }
    found
}

/// Asserts that `log` has an UPLOAD line naming each of `names` as skipped.
pub fn assert_named_as_skipped(log: &str, names: &[&str]) {
    assert_named_in("UPLOAD:", log, names);
}

/// Asserts that `log` has a line of `source` (`UPLOAD:`, `OSMO_CTRL:`) naming each of
/// `names` as skipped.
pub fn assert_named_in(source: &str, log: &str, names: &[&str]) {
    for name in names {
        assert!(
            log.lines()
                .any(|l| l.contains(source) && l.contains("Skipped") && l.contains(name)),
            "no {source} line names {name} as skipped:\n{log}"
        );
    }
}
