//! Command line, environment and config file: help texts, precedence (flags > env > file >
//! defaults) and a clear error for a bad config file.

mod common;

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::{LineClient, Server, TempDir, path_arg, tether_command};

const FLAGS: &[&str] = &[
    "--http",
    "--tcp",
    "--max-clients",
    "--max-message-length",
    "--queue-capacity",
    "--tls-cert",
    "--tls-key",
    "--config",
    "--header-timeout",
    "--max-connections",
    "--max-connections-per-ip",
    "--relay-max-connections",
    "--relay-max-sessions",
    "--relay-total-queue-bytes",
    "--data",
];

/// Run the binary to completion (with a timeout), returning its output.
fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = tether_command();
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawning tether");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("collecting tether output");
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collecting tether output");
            panic!(
                "tether {args:?} did not exit within 10 s; stdout {:?} stderr {:?}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn top_level_help_lists_every_flag() {
    let out = run(&["--help"], &[]);
    assert!(out.status.success(), "tether --help failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("serve"),
        "no serve subcommand in --help:\n{text}"
    );
    for flag in FLAGS {
        assert!(
            text.contains(flag),
            "tether --help does not mention {flag}:\n{text}"
        );
    }
}

#[test]
fn serve_help_lists_every_flag() {
    let out = run(&["serve", "--help"], &[]);
    assert!(out.status.success(), "tether serve --help failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in FLAGS {
        assert!(
            text.contains(flag),
            "tether serve --help does not mention {flag}:\n{text}"
        );
    }
}

#[tokio::test]
async fn config_file_sets_max_message_length() {
    let dir = TempDir::new("cfg");
    let cfg = dir.write(
        "tether.toml",
        "http = \"127.0.0.1:0\"\ntcp = \"127.0.0.1:0\"\nmax_message_length = 7\nmax_clients = 5\n",
    );
    let server = Server::builder()
        .args(["--config", &path_arg(&cfg)])
        .start();
    let status = server.status().await;
    assert_eq!(status["max_message_length"], 7, "{status}");
    assert_eq!(status["max_clients"], 5, "{status}");
    let mut c = LineClient::hello(server.tcp, "main", "alice").await;
    c.ok("SEND main:alice 1234567", "OK SEND main 0").await;
    c.err("SEND main:alice 12345678", "TOO_LONG").await;
}

#[tokio::test]
async fn config_file_provides_the_addresses() {
    let dir = TempDir::new("cfg");
    let cfg = dir.write(
        "tether.toml",
        "http = \"127.0.0.1:0\"\ntcp = \"127.0.0.1:0\"\n",
    );
    // No --http/--tcp: the addresses come from the file (TETHER_CONFIG).
    let server = Server::builder()
        .without_default_addrs()
        .env("TETHER_CONFIG", path_arg(&cfg))
        .start();
    assert_ne!(server.http.port(), 0);
    assert_ne!(server.tcp.port(), 0);
    let mut c = LineClient::hello(server.tcp, "main", "alice").await;
    c.ok("SEND main:alice hi", "OK SEND main 0").await;
}

#[tokio::test]
async fn env_vars_are_honoured() {
    let server = Server::builder()
        .without_default_addrs()
        .env("TETHER_HTTP", "127.0.0.1:0")
        .env("TETHER_TCP", "127.0.0.1:0")
        .env("TETHER_MAX_CLIENTS", "2")
        .env("TETHER_MAX_MESSAGE_LENGTH", "4")
        .env("TETHER_QUEUE_CAPACITY", "64")
        .start();
    let status = server.status().await;
    assert_eq!(status["max_clients"], 2, "{status}");
    assert_eq!(status["max_message_length"], 4, "{status}");
    let mut a = LineClient::hello(server.tcp, "main", "a").await;
    let _b = LineClient::hello(server.tcp, "main", "b").await;
    let mut c = LineClient::connect(server.tcp).await;
    c.err("HELLO main:c", "SERVER_FULL").await;
    a.ok("SEND main:a four", "OK SEND main 1").await;
    a.err("SEND main:a fives", "TOO_LONG").await;
}

#[tokio::test]
async fn flags_beat_env_beat_file() {
    let dir = TempDir::new("cfg");
    let cfg = dir.write(
        "tether.toml",
        "max_message_length = 7\nmax_clients = 5\nqueue_capacity = 32\n",
    );
    let cfg = path_arg(&cfg);

    // env > file
    let server = Server::builder()
        .args(["--config", &cfg])
        .env("TETHER_MAX_MESSAGE_LENGTH", "8")
        .start();
    let status = server.status().await;
    assert_eq!(status["max_message_length"], 8, "env beats file: {status}");
    assert_eq!(status["max_clients"], 5, "file beats default: {status}");
    drop(server);

    // flag > env > file
    let server = Server::builder()
        .args(["--config", &cfg, "--max-message-length", "9"])
        .env("TETHER_MAX_MESSAGE_LENGTH", "8")
        .env("TETHER_MAX_CLIENTS", "6")
        .start();
    let status = server.status().await;
    assert_eq!(status["max_message_length"], 9, "flag beats env: {status}");
    assert_eq!(status["max_clients"], 6, "env beats file: {status}");
}

#[test]
fn bad_config_file_is_a_clear_error() {
    let dir = TempDir::new("badcfg");
    let cases = [
        ("syntax.toml", "max_clients = = 3\n[[[\n"),
        ("type.toml", "max_clients = \"lots\"\n"),
    ];
    for (name, contents) in cases {
        let path = dir.write(name, contents);
        let path = path_arg(&path);
        let out = run(
            &[
                "serve",
                "--http",
                "127.0.0.1:0",
                "--tcp",
                "127.0.0.1:0",
                "--config",
                &path,
            ],
            &[],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !out.status.success(),
            "a bad config ({name}) must fail; stdout {stdout:?} stderr {stderr:?}"
        );
        assert!(
            !stdout.contains("listening"),
            "the server must not start with a bad config ({name}): {stdout:?}"
        );
        assert!(
            stderr.contains(&path) || stderr.contains(name),
            "the error for {name} should name the file:\n{stderr}"
        );
        if name == "type.toml" {
            assert!(
                stderr.contains("max_clients"),
                "the error for {name} should name the key:\n{stderr}"
            );
        }
    }

    // A missing config file is an error too.
    let missing = dir.path.join("does-not-exist.toml");
    let missing = path_arg(&missing);
    let out = run(
        &[
            "serve",
            "--http",
            "127.0.0.1:0",
            "--tcp",
            "127.0.0.1:0",
            "--config",
            &missing,
        ],
        &[],
    );
    assert!(
        !out.status.success(),
        "a missing config file must fail: {out:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&missing) || stderr.contains("does-not-exist.toml"),
        "the error should name the missing file:\n{stderr}"
    );
}

#[test]
fn bad_flag_values_fail() {
    for args in [
        &[
            "serve",
            "--http",
            "127.0.0.1:0",
            "--tcp",
            "127.0.0.1:0",
            "--max-clients",
            "many",
        ][..],
        &["serve", "--http", "not-an-address", "--tcp", "127.0.0.1:0"][..],
        &["serve", "--no-such-flag"][..],
    ] {
        let out = run(args, &[]);
        assert!(!out.status.success(), "tether {args:?} must fail: {out:?}");
        assert!(
            !out.stderr.is_empty(),
            "tether {args:?} failed without saying why"
        );
    }
}
