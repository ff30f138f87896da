//! A receiving system for delivery tests: a minimal HTTP/1.1 server on a
//! loopback port that records every POST and, like a well-behaved receiver,
//! keeps one copy per `Idempotency-Key`. It can be told to answer the first
//! requests with 503 to exercise retries, and can serve over TLS
//! ([`Receiver::start_tls`]), checking client certificates as configured.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request as received.
#[derive(Clone, Debug)]
pub struct Received {
    /// The `Idempotency-Key` header.
    pub key: String,
    /// The `Content-Type` header.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

/// What the receiver has seen.
#[derive(Default)]
pub struct Inbox {
    /// Every request, in arrival order (duplicates included).
    pub all: Vec<Received>,
    /// One per idempotency key: what a receiver that dedups keeps.
    pub unique: BTreeMap<String, Received>,
}

/// The receiver; dropping it does not stop the server task (tests are short).
#[derive(Clone)]
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it got.
    pub inbox: Arc<Mutex<Inbox>>,
    fail_first: Arc<AtomicUsize>,
    delay_ms: Arc<AtomicU64>,
    scheme: &'static str,
}

impl Receiver {
    /// Starts a receiver on 127.0.0.1 (port 0, or `port`); the first `fail_first` requests get 503.
    pub async fn start(port: u16, fail_first: usize) -> anyhow::Result<Receiver> {
        Self::listen(port, fail_first, None).await
    }

    /// Starts a receiver on 127.0.0.1 that speaks TLS with `config` (which
    /// may require client certificates); its URL names `localhost`.
    pub async fn start_tls(config: Arc<rustls::ServerConfig>) -> anyhow::Result<Receiver> {
        Self::listen(0, 0, Some(tokio_rustls::TlsAcceptor::from(config))).await
    }

    async fn listen(port: u16, fail_first: usize, tls: Option<tokio_rustls::TlsAcceptor>) -> anyhow::Result<Receiver> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let receiver = Receiver {
            addr: listener.local_addr()?,
            inbox: Arc::new(Mutex::new(Inbox::default())),
            fail_first: Arc::new(AtomicUsize::new(fail_first)),
            delay_ms: Arc::new(AtomicU64::new(0)),
            scheme: if tls.is_some() { "https" } else { "http" },
        };
        let r = receiver.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (r, tls) = (r.clone(), tls.clone());
                tokio::spawn(async move {
                    let _ = match tls {
                        // A client the TLS settings refuse never gets to send.
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(stream) => r.serve(stream).await,
                            Err(_) => Ok(()),
                        },
                        None => r.serve(stream).await,
                    };
                });
            }
        });
        Ok(receiver)
    }

    /// Makes every answer take `ms` milliseconds (a slow receiver keeps deliveries in flight).
    pub fn set_delay_ms(&self, ms: u64) {
        self.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// The URL to configure.
    pub fn url(&self) -> String {
        match self.scheme {
            "https" => format!("https://localhost:{}/inbox", self.addr.port()),
            _ => format!("http://{}/inbox", self.addr),
        }
    }

    /// Unique deliveries received so far.
    pub fn unique(&self) -> Vec<Received> {
        self.inbox.lock().expect("inbox lock").unique.values().cloned().collect()
    }

    /// All requests received so far.
    pub fn all(&self) -> Vec<Received> {
        self.inbox.lock().expect("inbox lock").all.clone()
    }

    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(&self, mut stream: S) -> anyhow::Result<()> {
        loop {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if stream.read(&mut byte).await? == 0 {
                    return Ok(());
                }
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let header = |name: &str| {
                head.lines()
                    .find_map(|l| l.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case(name)))
                    .map(|(_, v)| v.trim().to_owned())
                    .unwrap_or_default()
            };
            let length: usize = header("content-length").parse().unwrap_or(0);
            let mut body = vec![0u8; length];
            stream.read_exact(&mut body).await?;
            let delay = self.delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
            }
            let fail = self.fail_first.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
            let got = Received { key: header("idempotency-key"), content_type: header("content-type"), body };
            if fail {
                stream.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy").await?;
                stream.flush().await?;
                continue;
            }
            {
                let mut inbox = self.inbox.lock().expect("inbox lock");
                inbox.all.push(got.clone());
                inbox.unique.entry(got.key.clone()).or_insert(got);
            }
            stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await?;
            stream.flush().await?;
        }
    }
}
