//! A tiny Docker Registry v2 on 127.0.0.1 for unit tests (the real registry is exercised by the
//! node end-to-end suite): manifests by tag and digest, blobs (one behind a redirect), and
//! optional Basic or Bearer authentication.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;

use base64::Engine as _;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    None,
    Basic,
    Bearer,
}

pub const USER: &str = "puller";
pub const PASS: &str = "s3cret";

struct Content {
    /// path → (content type, body)
    routes: HashMap<String, (String, Vec<u8>)>,
    auth: Auth,
    port: u16,
}

pub struct Registry {
    routes: HashMap<String, (String, Vec<u8>)>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry {
            routes: HashMap::new(),
        }
    }

    pub fn blob(&mut self, repo: &str, data: &[u8]) -> String {
        let digest = format!("sha256:{}", crate::digest::sha256_hex(data));
        self.routes.insert(
            format!("/v2/{repo}/blobs/{digest}"),
            ("application/octet-stream".into(), data.to_vec()),
        );
        digest
    }

    /// Stores a manifest under its digest and, if given, a tag; returns the digest.
    pub fn manifest(
        &mut self,
        repo: &str,
        tag: Option<&str>,
        media_type: &str,
        json: &serde_json::Value,
    ) -> String {
        let body = serde_json::to_vec(json).unwrap();
        let digest = format!("sha256:{}", crate::digest::sha256_hex(&body));
        let entry = (media_type.to_string(), body);
        self.routes
            .insert(format!("/v2/{repo}/manifests/{digest}"), entry.clone());
        if let Some(t) = tag {
            self.routes
                .insert(format!("/v2/{repo}/manifests/{t}"), entry);
        }
        digest
    }

    /// Serves until the test process ends; returns the port.
    pub fn serve(self, auth: Auth) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let content = Arc::new(Content {
            routes: self.routes,
            auth,
            port,
        });
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let content = content.clone();
                thread::spawn(move || handle(stream, &content));
            }
        });
        port
    }
}

fn respond(
    mut s: &TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
    chunked: bool,
) {
    let mut head = format!("HTTP/1.1 {status}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if chunked {
        head.push_str("Transfer-Encoding: chunked\r\n\r\n");
        let _ = s.write_all(head.as_bytes());
        for chunk in body.chunks(7) {
            let _ = s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes());
            let _ = s.write_all(chunk);
            let _ = s.write_all(b"\r\n");
        }
        let _ = s.write_all(b"0\r\n\r\n");
    } else {
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let _ = s.write_all(head.as_bytes());
        let _ = s.write_all(body);
    }
}

fn handle(stream: TcpStream, c: &Content) {
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut authz = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("authorization")
        {
            authz = Some(v.trim().to_string());
        }
    }
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"))
    );
    if path.starts_with("/token") {
        if authz.as_deref() == Some(basic.as_str()) {
            respond(&stream, "200 OK", &[], br#"{"token":"tok-123"}"#, false);
        } else {
            respond(&stream, "401 Unauthorized", &[], b"{}", false);
        }
        return;
    }
    let authorized = match c.auth {
        Auth::None => true,
        Auth::Basic => authz.as_deref() == Some(basic.as_str()),
        Auth::Bearer => authz.as_deref() == Some("Bearer tok-123"),
    };
    if !authorized {
        let challenge = match c.auth {
            Auth::Bearer => format!(
                "Bearer realm=\"http://127.0.0.1:{}/token\",service=\"double\"",
                c.port
            ),
            _ => "Basic realm=\"double\"".to_string(),
        };
        respond(
            &stream,
            "401 Unauthorized",
            &[("WWW-Authenticate", challenge)],
            b"{}",
            false,
        );
        return;
    }
    if path == "/v2/" {
        respond(&stream, "200 OK", &[], b"{}", false);
        return;
    }
    // Blobs are first redirected once, as registries backed by object storage do.
    if path.contains("/blobs/") && !path.starts_with("/redirected") {
        respond(
            &stream,
            "307 Temporary Redirect",
            &[("Location", format!("/redirected{path}"))],
            b"",
            false,
        );
        return;
    }
    let key = path.strip_prefix("/redirected").unwrap_or(&path);
    match c.routes.get(key) {
        Some((ct, body)) => {
            let chunked = key.contains("/manifests/");
            respond(
                &stream,
                "200 OK",
                &[("Content-Type", ct.clone())],
                body,
                chunked,
            )
        }
        None => respond(&stream, "404 Not Found", &[], b"{\"errors\":[]}", false),
    }
}
