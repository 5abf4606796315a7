//! Replays the fuzz seed corpus, `fuzz/corpus/<target>/*`, through the very checks the cargo-fuzz
//! targets run (`fuzz/src/lib.rs`, included below), so that CI catches a regression on stable Rust
//! without libFuzzer. Each file runs on its own thread with a time limit, and a failure names the
//! file: a panic in the library, an error without a message or location, or a hang.

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// What a fuzz target runs on one input; it panics when the library breaks a promise.
type Check = fn(&[u8]);

/// The targets of `fuzz/Cargo.toml`, each with the check it runs.
const TARGETS: &[(&str, Check)] = &[
    ("decode_json", checks::decode_json),
    ("decode_xml", checks::decode_xml),
    ("decode_any", checks::decode_any),
    ("round_trip", checks::round_trip),
];

/// Far beyond what any seed needs even in a debug build: past it, the input hangs the library.
const TIME_LIMIT: Duration = Duration::from_secs(60);

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")
}

/// The seeds of one target, sorted; hidden files (libFuzzer's scratch, ignored by git) are skipped.
fn seeds(target: &str) -> Vec<PathBuf> {
    let dir = corpus_root().join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
}

/// Runs `check` on one seed on a thread of its own; `Err` says what went wrong.
fn replay_one(check: Check, path: &Path) -> Result<(), String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let (done, finished) = mpsc::channel();
    let name = path
        .strip_prefix(corpus_root())
        .unwrap_or(path)
        .display()
        .to_string();
    let worker = thread::Builder::new()
        .name(name)
        .spawn(move || {
            check(&data);
            let _ = done.send(());
        })
        .map_err(|e| format!("cannot spawn a thread: {e}"))?;
    match finished.recv_timeout(TIME_LIMIT) {
        // Sent only after `check` returned.
        Ok(()) => worker.join().map_err(|_| "panicked".to_owned()),
        // The sender was dropped without a send: `check` panicked.
        Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Ok(()) => Err("the worker ended without finishing".into()),
            Err(payload) => Err(format!("panicked: {}", panic_message(payload.as_ref()))),
        },
        // The thread is left running; the test fails and the process ends with it.
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
            "did not finish within {} s (a hang?)",
            TIME_LIMIT.as_secs()
        )),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a non-text panic payload)".to_owned()
    }
}

fn replay(target: &str) {
    let check = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, check)| *check)
        .unwrap_or_else(|| panic!("no target {target}"));
    let failures: Vec<String> = seeds(target)
        .iter()
        .filter_map(|path| {
            replay_one(check, path)
                .err()
                .map(|why| format!("  fuzz/corpus/{target}/{}: {why}", file_name(path)))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} seed(s) of {target} fail (backtraces above; RUST_BACKTRACE=1 for more):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

#[test]
fn replay_decode_json() {
    replay("decode_json");
}

#[test]
fn replay_decode_xml() {
    replay("decode_xml");
}

#[test]
fn replay_decode_any() {
    replay("decode_any");
}

#[test]
fn replay_round_trip() {
    replay("round_trip");
}

/// Every corpus directory belongs to a target replayed here, and every target has seeds.
#[test]
fn corpus_directories_match_the_targets() {
    let root = corpus_root();
    let mut dirs: Vec<String> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| file_name(&p))
        .collect();
    dirs.sort();
    let mut targets: Vec<String> = TARGETS.iter().map(|(t, _)| (*t).to_owned()).collect();
    targets.sort();
    assert_eq!(
        dirs, targets,
        "fuzz/corpus/* and the replayed targets differ"
    );
    for target in &targets {
        let targets_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
        assert!(
            targets_dir.join(format!("{target}.rs")).is_file(),
            "no fuzz/fuzz_targets/{target}.rs"
        );
        seeds(target);
    }
}
