//! A plain-HTTP/1.1 GET client over `std::net::TcpStream`.
//!
//! Hand-written rather than a crate: the stand-in only ever talks to the test cluster's plain
//! registries, needs GET with a few headers, Content-Length/chunked/close-delimited bodies and
//! redirects, and must link statically without TLS; about 150 lines do that with no new
//! dependency.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// A parsed `http://host[:port]/path?query` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    pub fn parse(url: &str) -> Result<Url> {
        let Some(rest) = url.strip_prefix("http://") else {
            if url.starts_with("https://") {
                bail!(
                    "{url}: https is not supported by the stand-in (the test cluster's registries are plain HTTP)"
                );
            }
            bail!("{url}: not an http:// URL");
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() => {
                (h, p.parse().with_context(|| format!("bad port in {url}"))?)
            }
            _ => (authority, 80),
        };
        if host.is_empty() {
            bail!("{url}: no host");
        }
        Ok(Url {
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }

    /// `host` or `host:port` as the Host header and auth scoping want it.
    pub fn authority(&self) -> String {
        if self.port == 80 {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Resolves a `Location` header against this URL.
    pub fn join(&self, location: &str) -> Result<Url> {
        if location.starts_with("http://") || location.starts_with("https://") {
            return Url::parse(location);
        }
        if location.starts_with('/') {
            return Ok(Url {
                path: location.to_string(),
                ..self.clone()
            });
        }
        let base = self.path.rsplit_once('/').map(|(b, _)| b).unwrap_or("");
        Ok(Url {
            path: format!("{base}/{location}"),
            ..self.clone()
        })
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.authority(), self.path)
    }
}

pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Box<dyn Read + Send>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Reads the whole body, refusing more than `limit` bytes.
    pub fn bytes(mut self, limit: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        (&mut self.body).take(limit + 1).read_to_end(&mut out)?;
        if out.len() as u64 > limit {
            bail!("response body larger than {limit} bytes");
        }
        Ok(out)
    }
}

/// One GET request (`Connection: close`, so the body ends at the latest with the connection).
pub fn get(url: &Url, headers: &[(&str, String)]) -> Result<Response> {
    let addr = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .with_context(|| format!("resolving {}", url.authority()))?
        .next()
        .with_context(|| format!("no address for {}", url.authority()))?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(30))
        .with_context(|| format!("connecting to {}", url.authority()))?;
    stream.set_read_timeout(Some(Duration::from_secs(300)))?;
    let mut req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: osartifact-standin\r\nConnection: close\r\n",
        url.path,
        url.authority()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes())?;

    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.trim_end().splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        bail!("GET {url}: not an HTTP/1 response: {:?}", line.trim_end());
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("GET {url}: bad status line {:?}", line.trim_end()))?;
    let reason = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("GET {url}: connection closed in the headers");
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let body: Box<dyn Read + Send> =
        if find("Transfer-Encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            Box::new(Chunked {
                inner: reader,
                left: 0,
                done: false,
            })
        } else if let Some(len) = find("Content-Length") {
            let len: u64 = len.parse().context("bad Content-Length")?;
            Box::new(reader.take(len))
        } else {
            Box::new(reader)
        };
    Ok(Response {
        status,
        reason,
        headers,
        body,
    })
}

/// A chunked transfer-coding body.
struct Chunked<R> {
    inner: R,
    left: u64,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            self.inner.read_line(&mut line)?;
            let size = line.trim().split(';').next().unwrap_or("");
            self.left = u64::from_str_radix(size, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if self.left == 0 {
                // Trailers up to the empty line.
                loop {
                    line.clear();
                    if self.inner.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        break;
                    }
                }
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf.len().min(self.left as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "chunk cut short",
            ));
        }
        self.left -= n as u64;
        if self.left == 0 {
            let mut crlf = String::new();
            self.inner.read_line(&mut crlf)?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://10.0.0.1:5000/v2/x?y=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("10.0.0.1", 5000, "/v2/x?y=1")
        );
        assert_eq!(u.to_string(), "http://10.0.0.1:5000/v2/x?y=1");
        assert_eq!(Url::parse("http://h").unwrap().path, "/");
        assert!(
            Url::parse("https://h/")
                .unwrap_err()
                .to_string()
                .contains("https")
        );
        assert_eq!(u.join("/a").unwrap().path, "/a");
        assert_eq!(u.join("http://o:1/b").unwrap().authority(), "o:1");
    }

    #[test]
    fn chunked_bodies() {
        let raw = b"4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\nT: v\r\n\r\n";
        let mut c = Chunked {
            inner: BufReader::new(&raw[..]),
            left: 0,
            done: false,
        };
        let mut s = String::new();
        c.read_to_string(&mut s).unwrap();
        assert_eq!(s, "Wikipedia");
    }
}
