//! How a client presents itself to bro: a channel (TLS with an optional
//! client certificate, or plain text to a loopback gateway) whose every call
//! carries the bearer token, if any, and the stated purpose. The CLI, the
//! demo and the tests connect this way.

use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use super::{PURPOSE_HEADER, Purpose};

/// Adds the credentials to every call.
#[derive(Clone)]
pub struct CallerInterceptor {
    authorization: Option<AsciiMetadataValue>,
    purpose: AsciiMetadataValue,
}

impl CallerInterceptor {
    /// Calls with `token` (if any) for `purpose`.
    pub fn new(token: Option<&str>, purpose: Purpose) -> Result<CallerInterceptor, String> {
        let authorization = match token {
            None => None,
            Some(t) => Some(
                MetadataValue::try_from(format!("Bearer {}", t.trim()))
                    .map_err(|_| "the token holds characters a header cannot".to_owned())?,
            ),
        };
        let purpose = MetadataValue::from_static(purpose.as_str());
        Ok(CallerInterceptor { authorization, purpose })
    }
}

impl tonic::service::Interceptor for CallerInterceptor {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(authorization) = &self.authorization {
            request.metadata_mut().insert("authorization", authorization.clone());
        }
        request.metadata_mut().insert(PURPOSE_HEADER, self.purpose.clone());
        Ok(request)
    }
}

/// A channel whose calls carry credentials.
pub type AuthChannel = InterceptedService<Channel, CallerInterceptor>;

/// TLS for a client.
#[derive(Clone, Debug, Default)]
pub struct ClientTls {
    /// The CA that signed the gateway's certificate (PEM).
    pub ca_pem: String,
    /// The client's certificate and key (PEM), for systems.
    pub identity: Option<(String, String)>,
    /// The name to check the server certificate against (default: the URL's host).
    pub domain: Option<String>,
}

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The address is not a URI.
    #[error("invalid server address {0:?}")]
    Address(String),
    /// TLS set-up or the connection failed.
    #[error("cannot connect: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Connects to `url` (`https://…` with `tls`, or `http://` to loopback).
pub async fn connect(
    url: &str,
    tls: Option<&ClientTls>,
    interceptor: CallerInterceptor,
) -> Result<AuthChannel, ConnectError> {
    let mut endpoint = Channel::from_shared(url.to_owned()).map_err(|_| ConnectError::Address(url.to_owned()))?;
    if let Some(tls) = tls {
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&tls.ca_pem));
        if let Some((cert, key)) = &tls.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        if let Some(domain) = &tls.domain {
            config = config.domain_name(domain.clone());
        }
        endpoint = endpoint.tls_config(config)?;
    }
    let channel = endpoint.connect().await?;
    Ok(InterceptedService::new(channel, interceptor))
}
