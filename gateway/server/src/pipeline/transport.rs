//! The transports a translated delivery leaves by: an HTTP POST with an
//! idempotency key, or an atomic write into a drop directory. (A pulling
//! system takes its deliveries over gRPC: `DeliveryService`.)

use std::path::Path;
use std::time::Duration;

use bro_store::Delivery;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};

/// Deadline of one HTTP delivery.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a handover failed.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// Worth another attempt later (no answer, a timeout, 408, 429, 5xx).
    Transient(String),
    /// Never going to work without a person (the receiver refuses it).
    Permanent(String),
}

/// A file name extension for a content type.
pub fn extension(content_type: &str) -> &'static str {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.ends_with("xml") {
        "xml"
    } else if essence.ends_with("json") {
        "json"
    } else {
        "bin"
    }
}

/// Writes `name` in `dir` so a reader sees the whole file or none: a hidden
/// temporary file, synced, renamed into place, the directory synced. The
/// file is readable and writable by its owner only (mode 600 on Unix),
/// whatever the process's umask: it holds people's data.
pub fn write_atomically(dir: &Path, name: &str, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir)?;
    let temp = dir.join(format!(".{name}.partial"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(0o600);
        // A partial file left by a crash keeps its mode when reopened: set it.
        if let Ok(existing) = std::fs::metadata(&temp) {
            let mut mode = existing.permissions();
            mode.set_mode(0o600);
            std::fs::set_permissions(&temp, mode)?;
        }
    }
    let mut file = options.open(&temp)?;
    file.write_all(body)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temp, dir.join(name))?;
    bro_store::sync_dir(&dir.join(name))
}

/// The TLS client of an `https://` receiver without settings of its own.
fn public_roots() -> &'static crate::systems::ReceiverTls {
    static DEFAULT: std::sync::OnceLock<crate::systems::ReceiverTls> = std::sync::OnceLock::new();
    DEFAULT.get_or_init(|| crate::systems::ReceiverTls::new(None, None).expect("the bundled roots are valid"))
}

/// One request and its answer (status, the start of the body) over `stream`.
async fn exchange<S>(
    stream: S,
    authority: &str,
    request: hyper::Request<Full<Bytes>>,
) -> Result<(hyper::StatusCode, String), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {authority} failed: {e}"))?;
    tokio::spawn(conn);
    let response = sender.send_request(request).await.map_err(|e| format!("POST to {authority} failed: {e}"))?;
    let status = response.status();
    // A receiver's answer is read only so far: it is shown, masked, as the error.
    let text = match http_body_util::Limited::new(response.into_body(), 4096).collect().await {
        Ok(collected) => {
            let bytes = collected.to_bytes();
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned()
        }
        Err(_) => String::new(),
    };
    Ok((status, text))
}

/// POSTs a delivery (`https://` verified by `tls`, or the public roots).
/// 2xx: done; 408, 429 and 5xx or no answer: retry; any other status: dead
/// (the receiver refuses it; a person must look).
pub async fn post(
    url: &str,
    tls: Option<&crate::systems::ReceiverTls>,
    delivery: &Delivery,
    content_type: &str,
    body: Vec<u8>,
) -> Result<(), Failure> {
    let uri: hyper::Uri = url.parse().map_err(|e| Failure::Permanent(format!("invalid URL {url:?}: {e}")))?;
    let secure = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(Failure::Permanent(format!("only http:// and https:// URLs are supported, not {url:?}"))),
    };
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(Failure::Permanent("URLs with credentials are not supported".into()));
    }
    let host = uri.host().ok_or_else(|| Failure::Permanent(format!("URL {url:?} has no host")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let authority = uri.authority().map(|a| a.as_str().to_owned()).unwrap_or_else(|| host.clone());
    let path = uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into());
    let request = hyper::Request::post(path)
        .header(hyper::header::HOST, &authority)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .header("Idempotency-Key", &delivery.new.delivery_id)
        .header("X-Bro-Case", delivery.new.case_id.resource_name())
        .header("X-Bro-Sequences", format!("{}-{}", delivery.new.first_sequence, delivery.new.last_sequence))
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| Failure::Permanent(format!("cannot build the request (the adapter's content type?): {e}")))?;
    let send = async {
        let stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
        stream.set_nodelay(true).ok();
        if !secure {
            return exchange(stream, &authority, request).await;
        }
        let name = rustls_pki_types::ServerName::try_from(host.clone())
            .map_err(|e| format!("{host:?} is not a name a certificate can hold: {e}"))?;
        let tls = tls.unwrap_or_else(|| public_roots());
        let stream = tls
            .connector()
            .connect(name, stream)
            .await
            .map_err(|e| format!("TLS with {authority} failed ({}): {e}", tls.described))?;
        exchange(stream, &authority, request).await
    };
    match tokio::time::timeout(HTTP_TIMEOUT, send).await {
        Err(_) => Err(Failure::Transient(format!("POST to {authority} timed out after {HTTP_TIMEOUT:?}"))),
        Ok(Err(e)) => Err(Failure::Transient(e)),
        Ok(Ok((status, _))) if status.is_success() => Ok(()),
        Ok(Ok((status, text))) => {
            let why = format!("{authority} answered {status}: {}", text.trim());
            if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
                Err(Failure::Transient(why))
            } else {
                Err(Failure::Permanent(why))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_appear_whole_under_their_name() {
        let dir = tempfile_dir();
        write_atomically(&dir, "d1.xml", b"<x/>").expect("write");
        write_atomically(&dir, "d1.xml", b"<x/>").expect("a repeated delivery overwrites");
        let names: Vec<String> = std::fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["d1.xml"], "no partial file is left behind");
        assert_eq!(std::fs::read(dir.join("d1.xml")).expect("read"), b"<x/>");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join("d1.xml")).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "owner only, whatever the umask");
            // A partial file a crash left readable by others is closed down too.
            let partial = dir.join(".d2.xml.partial");
            std::fs::write(&partial, b"<half").expect("partial");
            std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            write_atomically(&dir, "d2.xml", b"<x/>").expect("write");
            let mode = std::fs::metadata(dir.join("d2.xml")).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("bro-worker-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn extensions_follow_the_content_type() {
        assert_eq!(extension("application/fhir+xml; fhir-version=4.0"), "xml");
        assert_eq!(extension("application/xml; charset=windows-1252"), "xml");
        assert_eq!(extension("application/fhir+json"), "json");
        assert_eq!(extension("application/pdf"), "bin");
    }
}
