//! A minimal blocking HTTP/1.1 client for the load generator's control requests (WHEP offers,
//! Janus API calls): one connection per request, `Content-Length` bodies only. Enough for r58 and
//! Janus on loopback; not a general client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum HttpError {
    #[error("{url}: {source}")]
    Io { url: String, source: std::io::Error },
    #[error("{url}: malformed response: {reason}")]
    Malformed { url: String, reason: String },
    #[error("{url}: HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
}

pub struct Response {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request; a status outside 2xx is an error carrying the body.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> Result<Response, HttpError> {
    let url = format!("http://{addr}{path}");
    let io = |source| HttpError::Io {
        url: url.clone(),
        source,
    };
    let malformed = |reason: &str| HttpError::Malformed {
        url: url.clone(),
        reason: reason.to_owned(),
    };
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(io)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(io)?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).map_err(io)?;
    stream.write_all(body.as_bytes()).map_err(io)?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(io)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| malformed("no status line"))?;
    let mut headers = Vec::new();
    let mut length = None;
    let mut chunked = false;
    loop {
        line.clear();
        reader.read_line(&mut line).map_err(io)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (name, value) = l.split_once(':').ok_or_else(|| malformed("bad header"))?;
        let value = value.trim().to_owned();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        }
        if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        }
        headers.push((name.to_owned(), value));
    }
    let mut raw = Vec::new();
    match length {
        _ if chunked => loop {
            line.clear();
            reader.read_line(&mut line).map_err(io)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| malformed("bad chunk size"))?;
            let mut chunk = vec![0u8; size + 2]; // the data, then CRLF
            reader.read_exact(&mut chunk).map_err(io)?;
            if size == 0 {
                break;
            }
            raw.extend_from_slice(&chunk[..size]);
        },
        Some(n) => {
            raw.resize(n, 0);
            reader.read_exact(&mut raw).map_err(io)?;
        }
        None => {
            reader.read_to_end(&mut raw).map_err(io)?;
        }
    }
    let body = String::from_utf8_lossy(&raw).into_owned();
    if !(200..300).contains(&status) {
        return Err(HttpError::Status { url, status, body });
    }
    Ok(Response { headers, body })
}
