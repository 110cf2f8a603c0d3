//! Bad input and unreachable targets: one clear line on stderr, exit 2.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};

fn taskscope(args: &[&str]) -> Output {
    Command::new(common::BIN)
        .args(args)
        .output()
        .expect("run taskscope")
}

fn one_error_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got {err:?}");
    lines[0].to_string()
}

#[test]
fn closed_port_gives_one_line_and_exit_2() {
    let out = taskscope(&["connect", "127.0.0.1:1", "--once"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        one_error_line(&out),
        "taskscope: error: connection refused by 127.0.0.1:1: is the target running with console-subscriber on that port?"
    );
}

#[test]
fn http_server_is_not_a_console_endpoint() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let out = taskscope(&["connect", &addr, "--once"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        one_error_line(&out),
        format!(
            "taskscope: error: {addr} is not a tokio-console endpoint (it does not speak gRPC): check the port"
        )
    );
}

#[test]
fn bad_addresses_are_rejected_with_exit_2() {
    for (addr, expected) in [
        (
            "host:notaport",
            "invalid port \"notaport\" in \"host:notaport\"",
        ),
        ("https://h:1", "unsupported scheme"),
        ("", "empty address"),
    ] {
        let out = taskscope(&["connect", addr, "--once"]);
        assert_eq!(out.status.code(), Some(2), "{addr}");
        let line = one_error_line(&out);
        assert!(line.starts_with("taskscope: error: "), "{line}");
        assert!(line.contains(expected), "{addr}: {line}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let out = taskscope(&["connect", "--window", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid duration"));
    let out = taskscope(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_reads_like_documentation() {
    let out = taskscope(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "connect",
        "demo",
        "Exit codes: 0 ok, 1 suspects found (watch), 2 usage or input error",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
    assert!(
        !help.contains("demo-target"),
        "the hidden command shows in --help"
    );
}

#[test]
fn ipv6_addresses_are_understood() {
    let out = taskscope(&["connect", "[::1]:1", "--once"]);
    assert_eq!(out.status.code(), Some(2));
    let line = one_error_line(&out);
    // Either refused (IPv6 loopback up) or unreachable, but about [::1]:1.
    assert!(line.contains("[::1]:1"), "{line}");
}

#[test]
fn unknown_formats_and_conflicting_inputs_are_usage_errors() {
    let out = taskscope(&["diff", "a.json", "b.json", "--format", "xml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'xml' for '--format"));
    let out = taskscope(&[
        "report",
        "127.0.0.1:1",
        "-o",
        "report.docx",
        "--duration",
        "1s",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        one_error_line(&out),
        "taskscope: error: cannot tell the report format from \"report.docx\": use a .md, .json, .html or .pb.gz file name, or --format"
    );
    let out = taskscope(&["report", "a.json", "b.json", "c.json", "-o", "-"]);
    assert_eq!(out.status.code(), Some(2));
    let out = taskscope(&["watch", "127.0.0.1:1", "--duration", "soon"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_port_that_refuses_from_the_start_fails_at_once_whatever_the_duration() {
    for cmd in [
        vec![
            "watch",
            "127.0.0.1:1",
            "--duration",
            "1h",
            "--fail-on-suspect",
        ],
        vec![
            "snapshot",
            "127.0.0.1:1",
            "--duration",
            "1h",
            "-o",
            "/dev/null",
        ],
        vec!["report", "127.0.0.1:1", "--duration", "1h", "-o", "-"],
    ] {
        let started = std::time::Instant::now();
        let out = taskscope(&cmd);
        assert_eq!(out.status.code(), Some(2), "{cmd:?}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{cmd:?} took {:?}",
            started.elapsed()
        );
        assert_eq!(
            one_error_line(&out),
            "taskscope: error: connection refused by 127.0.0.1:1: is the target running with console-subscriber on that port?",
            "{cmd:?}"
        );
    }
}

#[test]
fn wait_for_target_rides_out_a_target_that_is_not_up_yet() {
    // The port first answers with something that is not the target (so
    // the first attempt surely fails), then the real target comes up on it.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let addr = format!("127.0.0.1:{port}");
    let mut watch = Command::new(common::BIN)
        .args([
            "watch",
            &addr,
            "--duration",
            "1s",
            "--wait-for-target",
            "60s",
            "--no-waits",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start watch");
    let (first, _) = listener.accept().expect("the first attempt");
    drop(first);
    drop(listener);
    let _target = common::DemoTarget::start_on(port, &["--scenarios", "healthy"]);
    let status = watch.wait().expect("watch ends");
    let mut err = String::new();
    watch
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read stderr");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("0 suspect group(s)"), "{err}");
}

#[test]
fn a_missing_unix_socket_is_named() {
    let out = taskscope(&["connect", "file:///nonexistent/taskscope.sock", "--once"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        one_error_line(&out),
        "taskscope: error: nothing listens at file:///nonexistent/taskscope.sock: is the target's console serving on that socket?"
    );
}

/// An update over `--max-message-size` is refused with a line that names
/// the limit to raise, never an empty screen.
#[test]
fn an_update_over_the_size_limit_names_the_flag_to_raise() {
    let target = common::DemoTarget::start(&[
        "--no-agent",
        "--scenarios",
        "sleepers",
        "--leak-every",
        "10ms",
    ]);
    // Enough sleepers that the first update is well over 1 KiB.
    let sleepers = common::spawn_line("sleepers");
    common::watch_until(
        target.target(),
        std::time::Duration::from_secs(30),
        taskscope::analysis::Params::default(),
        |a| common::group(a, &sleepers).is_some_and(|g| g.live >= 30),
    );
    let out = taskscope(&[
        "connect",
        &target.addr,
        "--once",
        "--max-message-size",
        "1KiB",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let line = one_error_line(&out);
    assert!(
        line.contains("bytes, over the limit of 1024 bytes: raise --max-message-size"),
        "{line}"
    );
}
