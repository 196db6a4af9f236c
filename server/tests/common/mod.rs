//! Helpers shared by the server's end-to-end tests: starting a server on
//! an ephemeral port per event loop, connecting, requests, and reading
//! metrics.
#![allow(dead_code)] // each test file uses its own subset

use cx_features::{DeviceType, RequestContext};
use cx_server::config::{IoMode, ServerConfig};
use cx_server::serve::Server;
use cx_wire::client::{Client, Response, ResponseBody};
use cx_wire::protocol::{self, ErrorCode};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub const FIXTURE: &str = "../components/wire/tests/fixtures/openrtb/2.5_mobile.json";

pub fn fixture() -> Vec<u8> {
    std::fs::read(FIXTURE).expect("the OpenRTB fixture exists")
}

/// The event loops this machine can run: epoll always, io_uring when the
/// probe passes (the tests say so when it does not).
pub fn io_modes() -> Vec<IoMode> {
    match cx_server::uring::probe() {
        Ok(()) => vec![IoMode::Epoll, IoMode::Uring],
        Err(e) => {
            eprintln!(
                "io_uring unavailable here, testing epoll only: {}",
                cx_server::error::render_chain(&e)
            );
            vec![IoMode::Epoll]
        }
    }
}

pub fn config(io: IoMode) -> ServerConfig {
    ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        admin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        io,
        ..ServerConfig::default()
    }
}

pub fn start(config: ServerConfig) -> Server {
    let io = config.io;
    let server = Server::start(config).expect("the server starts");
    assert_eq!(server.io(), io, "the server runs the loop asked for");
    server
}

pub fn connect(server: &Server) -> Client {
    let mut client = Client::connect(server.local_addr()).expect("connects");
    client
        .set_timeout(Some(Duration::from_secs(10)))
        .expect("sets a timeout");
    client
}

pub fn context(i: u32) -> RequestContext {
    RequestContext {
        device_type: DeviceType::from_openrtb(4),
        country: "USA".into(),
        placement_width: 300,
        placement_height: 250,
        user_id: format!("user-{i}"),
        ..RequestContext::default()
    }
}

pub fn stop(server: Server) {
    server.shutdown();
    server.wait().expect("the workers stop cleanly");
}

/// Reads until the server closes the connection; returns the bytes read.
pub fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("sets a timeout");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("the server neither answered nor closed: {e}"),
        }
    }
}

/// The `error` frames in `bytes`: (request id, code).
pub fn error_frames(bytes: &[u8]) -> Vec<(u64, ErrorCode)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let protocol::Decoded::Frame {
        header,
        payload,
        consumed,
    } = protocol::decode_frame(rest)
    {
        if let Ok(e) = protocol::decode_error(payload) {
            out.push((header.request_id, e.code));
        }
        rest = &rest[consumed..];
    }
    out
}

pub fn expect_decision(response: &Response) -> &cx_wire::protocol::DecisionResponse {
    match &response.body {
        ResponseBody::Decision(d) => d,
        other => panic!("expected a decision, got {other:?}"),
    }
}

pub fn scrape(server: &Server, path: &str) -> (u16, String) {
    let addr = server.admin_addr().expect("the admin endpoint runs");
    let mut stream = TcpStream::connect(addr).expect("connects to the admin port");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("writes");
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .expect("reads the response");
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("an HTTP status line");
    (status, text)
}

/// The value of the sample `name` (exact, labels included) in metrics text.
pub fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in:\n{text}"))
}

/// The `cx` binary of this build.
pub fn cx() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_cx"))
}

/// Sends signal `name` (`TERM`, `HUP`, ...) to process `pid`.
pub fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .expect("runs kill");
    assert!(status.success(), "kill -{name} {pid}");
}
