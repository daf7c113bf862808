//! The command line: each command lists only its own options, `topkart` alone (or with serve's
//! options) is `serve`, and an out-of-range setting is refused at start instead of clamped.

use std::process::Command;

/// The help text of `topkart <args…> --help`.
fn help(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_topkart"))
        .args(args)
        .arg("--help")
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "{args:?} --help failed");
    String::from_utf8(output.stdout).expect("utf-8 help")
}

#[track_caller]
fn assert_options(text: &str, present: &[&str], absent: &[&str]) {
    for option in present {
        assert!(text.contains(option), "{option} missing from:\n{text}");
    }
    for option in absent {
        assert!(!text.contains(option), "{option} should not be in:\n{text}");
    }
}

/// `loadtest`, `serve`, `migrate` and `admin` each show their own options and no other's.
#[test]
fn each_command_shows_only_its_own_options() {
    const SERVER: [&str; 6] = [
        "--bind",
        "--workers",
        "--writer-batch-max",
        "--jwt-secret",
        "--rate-limits",
        "--db-max-connections",
    ];
    const LOADTEST: [&str; 4] = ["--scenario", "--url", "--connections", "--warmup-secs"];
    assert_options(&help(&["loadtest"]), &LOADTEST, &SERVER);
    assert_options(
        &help(&["loadtest"]),
        &["--admin-password"],
        &["--database-url"],
    );
    assert_options(&help(&["serve"]), &SERVER, &LOADTEST);
    assert_options(&help(&["serve"]), &["--database-url"], &[]);
    assert_options(&help(&["migrate"]), &["--database-url"], &SERVER);
    assert_options(&help(&["migrate"]), &[], &LOADTEST);
    assert_options(
        &help(&["admin"]),
        &["--database-url", "--argon2-memory-kib"],
        &SERVER,
    );
    let top = help(&[]);
    assert_options(&top, &["serve", "migrate", "loadtest", "admin"], &SERVER);
    // Every option has a description (no bare `--flag <VALUE>` line followed by nothing).
    for command in ["serve", "loadtest", "migrate"] {
        let text = help(&[command]);
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim_start().starts_with("--") && !line.contains("  ") {
                let next = lines.get(i + 1).map_or("", |next| next.trim());
                assert!(
                    !next.is_empty() && !next.starts_with('[') && !next.starts_with("--"),
                    "`topkart {command}`: {line} has no description"
                );
            }
        }
    }
}

/// A count of 0 where at least 1 is needed stops the engine with a message naming the setting,
/// before it opens anything (it used to be raised to 1 silently).
#[test]
fn an_out_of_range_setting_is_refused_not_clamped() {
    for (variable, value) in [
        ("TOPKART_WORKERS", "0"),
        ("TOPKART_WRITER_BATCH_MAX", "0"),
        ("TOPKART_DEAL_MAILBOX_CAPACITY", "0"),
        ("TOPKART_DB_MAX_CONNECTIONS", "0"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_topkart"))
            .env(variable, value)
            .env("TOPKART_BIND", "127.0.0.1:0")
            .env("DATABASE_URL", "sqlite://never-opened/topkart.db")
            .output()
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{variable}={value} was accepted");
        assert!(stderr.contains("invalid value '0'"), "{variable}: {stderr}");
        assert!(
            !std::path::Path::new("never-opened").exists(),
            "nothing is opened before the settings are checked"
        );
    }
}
