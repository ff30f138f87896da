//! Whole gateways as an operator runs them: `bro serve` as a child process
//! (for the replica, crash and benchmark runs that need processes, not
//! tasks), and the PostgreSQL server those runs use (`BRO_TEST_POSTGRES`,
//! default the local one; without one a run is skipped, except in CI).

#![allow(clippy::print_stderr)] // A skipped run says so.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tonic::transport::Channel;

/// A free loopback port (bound and released at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0)).expect("probe").local_addr().expect("address").port()
}

/// A `bro serve` child with its gRPC and admin listeners; killed on drop if still running.
pub struct ServeProcess {
    /// The process.
    pub child: Child,
    /// Its gRPC listener.
    pub addr: SocketAddr,
    /// Its admin listener (`/metrics`).
    pub admin: SocketAddr,
    /// Where its log (stderr, JSON lines) goes.
    pub log: PathBuf,
}

impl ServeProcess {
    /// Starts the `bro` binary at `bro` as `bro serve --config config --data-dir data_dir`.
    pub fn spawn(bro: &Path, config: &Path, data_dir: &Path, log: PathBuf) -> ServeProcess {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let child = Command::new(bro)
            .args(["serve", "--log-format", "json", "--listen", &addr.to_string()])
            .args(["--admin-listen", &admin.to_string(), "--config"])
            .arg(config)
            .arg("--data-dir")
            .arg(data_dir)
            .env_remove("BRO_CONFIG")
            .env_remove("BRO_STORE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn bro serve");
        ServeProcess { child, addr, admin, log }
    }

    /// A channel to its gRPC listener, once it answers (panics if it exits or takes a minute).
    pub async fn channel(&mut self) -> Channel {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll") {
                panic!("bro serve exited with {status}: {}", std::fs::read_to_string(&self.log).unwrap_or_default());
            }
            if let Ok(channel) = Channel::from_shared(format!("http://{}", self.addr)).expect("url").connect().await {
                return channel;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "bro serve did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Its `/metrics` (HTTP/1.0, the whole answer).
    pub fn metrics(&self) -> String {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(self.admin).expect("connect to the admin listener");
        write!(stream, "GET /metrics HTTP/1.0\r\nHost: {}\r\n\r\n", self.admin).expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        answer
    }

    /// Stops it with SIGTERM and checks it exits 0.
    pub fn stop(mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let status = self.child.wait().expect("wait");
        assert!(
            status.success(),
            "bro serve should exit 0: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The PostgreSQL server of test runs: `BRO_TEST_POSTGRES`, or the local one.
pub fn postgres_url() -> String {
    std::env::var("BRO_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A connection to it, or `None` (skip) when there is none outside CI.
pub async fn postgres_admin() -> Option<tokio_postgres::Client> {
    match tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls).await {
        Ok((client, connection)) => {
            tokio::spawn(connection);
            Some(client)
        }
        Err(e) if std::env::var_os("CI").is_some() => panic!("no PostgreSQL at {} in CI: {e}", postgres_url()),
        Err(e) => {
            eprintln!("SKIPPED: no PostgreSQL at {} ({e}); set BRO_TEST_POSTGRES to run it", postgres_url());
            None
        }
    }
}

/// The URL of database `name` on that server.
pub fn database_url(name: &str) -> String {
    let base = postgres_url();
    let (server, _) = base.rsplit_once('/').expect("a URL with a database");
    format!("{server}/{name}")
}

/// Creates database `name` afresh (dropping one left over); its URL.
pub async fn fresh_database(admin: &tokio_postgres::Client, name: &str) -> String {
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.expect("drop old");
    admin.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create");
    database_url(name)
}
