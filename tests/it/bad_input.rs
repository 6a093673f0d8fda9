//! The bad-input corpus (issue 14): every directory of `tests/bad-input/` is a config with
//! its OKR files (and secret or certificate files where the case needs them) that holds
//! one kind of mistake — wrong types, unknown keys, duplicate ids, cycles, unknown
//! references, invalid regexes, reversed periods, missing or unreadable secrets and files,
//! empty files, a byte order mark, CRLF line ends, huge values, bytes that are not UTF-8.
//! Its `expected` file lists, one per line, every problem `okrsync check` must report
//! (file, line where known, key, the id concerned and what was wrong), and nothing else.
//! `check` and `sync` must both exit 2 with that report and never panic.

use std::path::Path;
use std::process::Command;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The problem lines of a report (a message may continue on lines of its own).
fn problems(stderr: &str) -> Vec<String> {
    let mut lines: Vec<String> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("  - "))
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

fn run(dir: &Path, command: &str) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_okrsync"));
    cmd.current_dir(dir)
        .args(["--config", "okrsync.toml", command])
        .env_remove("OKRSYNC_CONFIG")
        .env_remove("OKRSYNC_BAD_INPUT_SURELY_UNSET")
        .env_remove("JIRA_TOKEN")
        .env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("OKRSYNC__") {
            cmd.env_remove(k);
        }
    }
    cmd.output().expect("run okrsync")
}

#[test]
fn every_broken_input_gets_its_own_message_and_exit_2() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-input");
    let mut cases: Vec<_> = std::fs::read_dir(&corpus)
        .expect("tests/bad-input")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 40, "the corpus holds {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let work = tempfile::tempdir().expect("dir");
        copy_dir(case, work.path());
        let mut expected: Vec<String> = std::fs::read_to_string(case.join("expected"))
            .expect("expected")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect();
        expected.sort();
        assert!(!expected.is_empty(), "{name}: expected lists no problem");
        let check = run(work.path(), "check");
        let stderr = String::from_utf8_lossy(&check.stderr).to_string();
        if stderr.contains("panicked") {
            failures.push(format!("{name}: check panicked:\n{stderr}"));
            continue;
        }
        if check.status.code() != Some(2) {
            failures.push(format!(
                "{name}: check exited {:?}:\n{stderr}",
                check.status.code()
            ));
        }
        if !check.stdout.is_empty() {
            failures.push(format!("{name}: check wrote to stdout"));
        }
        if problems(&stderr) != expected {
            failures.push(format!(
                "{name}: check reported\n{}\nexpected\n{}",
                problems(&stderr).join("\n"),
                expected.join("\n")
            ));
        }
        let sync = run(work.path(), "sync");
        let sync_err = String::from_utf8_lossy(&sync.stderr).to_string();
        if sync.status.code() != Some(2) || sync_err.contains("panicked") {
            failures.push(format!(
                "{name}: sync exited {:?}:\n{sync_err}",
                sync.status.code()
            ));
        } else if problems(&sync_err) != expected {
            failures.push(format!(
                "{name}: sync's report differs from check's:\n{sync_err}"
            ));
        }
        // Nothing was created: a broken config starts nothing.
        if work.path().join("okrsync.db").exists() {
            failures.push(format!("{name}: a database was created"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
