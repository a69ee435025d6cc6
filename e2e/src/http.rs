//! A plain HTTP/1.0 GET for admin endpoints, registries and NodePorts (no client library:
//! one request, read to the end).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::Result;

/// `GET path` on `addr` (`host:port`): the status code and the body.
pub fn get(addr: &str, path: &str) -> Result<(u16, String)> {
    let (code, body) = get_bytes(addr, path)?;
    Ok((code, String::from_utf8_lossy(&body).into_owned()))
}

/// Like [`get`], with the body as bytes.
pub fn get_bytes(addr: &str, path: &str) -> Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(buf.len());
    let head = String::from_utf8_lossy(&buf[..split]);
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = buf.get(split + 4..).map(<[u8]>::to_vec).unwrap_or_default();
    Ok((code, body))
}

/// `GET path` on 127.0.0.1:`port` (the admin listeners speak plain HTTP).
pub fn get_local(port: u16, path: &str) -> Result<(u16, String)> {
    get(&format!("127.0.0.1:{port}"), path)
}
