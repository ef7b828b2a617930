//! TLS for store connections, with rustls (the ring provider reqwest already brings; never
//! OpenSSL).
//!
//! PostgreSQL follows libpq's `sslmode` (read from the connection string, where libpq users
//! already keep it):
//!
//! | sslmode | TLS | verification |
//! |---|---|---|
//! | `disable` | never | - |
//! | `prefer` (the default) | when the server offers it, else plain | none |
//! | `require` | always | none; with `sslrootcert`, the chain (libpq: acts as `verify-ca`) |
//! | `verify-ca` | always | the chain up to `sslrootcert` |
//! | `verify-full` | always | the chain and the host name |
//!
//! `sslrootcert` is a PEM file, or `system` for the system's roots; `sslcert` / `sslkey` a
//! client certificate (PEM) sent when the server asks for one. Redis takes the same three
//! parameters on a `rediss://` URL (there the chain and the host name are always verified,
//! against the system's roots unless `sslrootcert` names a file).
//!
//! These parameters are taken out of the URL before the driver sees it (neither driver knows
//! `verify-ca` / `verify-full` or our parameter names), and every error here names the host and
//! what failed, never the connection string.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// libpq's `sslmode` (`allow` is not offered: it means plain first, which no deployment that
/// needs this table wants).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<SslMode, String> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            "allow" => {
                return Err(
                    "store: sslmode=allow is not supported (use prefer, require, verify-ca or verify-full)"
                        .into(),
                );
            }
            other => {
                return Err(format!(
                    "store: sslmode={other:?} is not one of disable, prefer, require, verify-ca, verify-full"
                ));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where trusted roots come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Roots {
    /// A PEM file of CA certificates (`sslrootcert=/path`).
    File(PathBuf),
    /// The system's roots (`sslrootcert=system`, libpq 16's spelling).
    System,
}

/// What is checked about the server's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    Nothing,
    Chain,
    ChainAndHost,
}

/// The TLS settings of one connection string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsOptions {
    pub mode: SslMode,
    pub roots: Option<Roots>,
    /// Client certificate chain and key (PEM files).
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl TlsOptions {
    /// What will be verified, libpq's way: `require` with a root certificate acts as `verify-ca`.
    pub fn verify(&self) -> Verify {
        match self.mode {
            SslMode::Disable | SslMode::Prefer => Verify::Nothing,
            SslMode::Require if self.roots.is_some() => Verify::Chain,
            SslMode::Require => Verify::Nothing,
            SslMode::VerifyCa => Verify::Chain,
            SslMode::VerifyFull => Verify::ChainAndHost,
        }
    }
}

/// How a connection turned out, for `status` and `-v`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transport {
    /// The TLS version when the connection is encrypted (`None`: plain).
    pub tls: Option<String>,
    pub verify: Verify,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.tls {
            None => f.write_str("not encrypted"),
            Some(v) => {
                write!(f, "encrypted ({v}), ")?;
                f.write_str(match self.verify {
                    Verify::Nothing => "server certificate not verified",
                    Verify::Chain => "verified: certificate chain (not the host name)",
                    Verify::ChainAndHost => "verified: certificate chain and host name",
                })
            }
        }
    }
}

const PARAMS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// Splits the TLS parameters out of a connection string's query. Returns the string without
/// them and the options. Errors never repeat the string (it may hold a password).
pub fn split_url(url: &str) -> Result<(String, TlsOptions), String> {
    let (base, query, fragment) = match url.split_once('?') {
        None => (url, "", None),
        Some((b, rest)) => match rest.split_once('#') {
            Some((q, f)) => (b, q, Some(f)),
            None => (b, rest, None),
        },
    };
    let mut kept = Vec::new();
    let (mut mode, mut roots, mut cert, mut key) = (None, None, None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if !PARAMS.contains(&k) {
            kept.push(pair);
            continue;
        }
        let v = percent_decode(v).ok_or_else(|| format!("store: {k} is not valid UTF-8"))?;
        match k {
            "sslmode" => mode = Some(SslMode::parse(&v)?),
            "sslrootcert" if v == "system" => roots = Some(Roots::System),
            "sslrootcert" => roots = Some(Roots::File(PathBuf::from(v))),
            "sslcert" => cert = Some(PathBuf::from(v)),
            _ => key = Some(PathBuf::from(v)),
        }
    }
    let client_cert = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => {
            return Err(
                "store: sslcert and sslkey go together (a client certificate needs its key)".into(),
            );
        }
    };
    let is_redis = url.starts_with("rediss://") || url.starts_with("redis://");
    let mode = match mode {
        Some(m) if is_redis => {
            return Err(format!(
                "store: sslmode={} is for postgres:// (redis: rediss:// is always verified, redis:// never encrypted)",
                m.as_str()
            ));
        }
        Some(m) => m,
        None if url.starts_with("rediss://") => SslMode::VerifyFull,
        None if is_redis || url.starts_with("unix://") => SslMode::Disable,
        None => SslMode::Prefer,
    };
    if mode == SslMode::Disable && (roots.is_some() || client_cert.is_some()) {
        return Err(if is_redis {
            "store: sslrootcert/sslcert need rediss:// (redis:// is not encrypted)".into()
        } else {
            "store: sslrootcert/sslcert with sslmode=disable: nothing would use them".into()
        });
    }
    if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) && roots.is_none() && !is_redis {
        return Err(format!(
            "store: sslmode={} needs sslrootcert=/path/to/ca.pem (or sslrootcert=system for the system's roots)",
            mode.as_str()
        ));
    }
    let mut out = base.to_owned();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    Ok((
        out,
        TlsOptions {
            mode,
            roots,
            client_cert,
        },
    ))
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(h) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(h);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a PEM file of certificates; the error names the file and the option.
fn read_certs(option: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            format!(
                "{option} {}: cannot read a PEM certificate ({e})",
                path.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!("{option} {}: no certificate in it", path.display()));
    }
    Ok(certs)
}

/// The PEM root certificates as bytes (Redis takes them this way); `None` for the system's.
pub fn root_pem(opts: &TlsOptions) -> Result<Option<Vec<u8>>, String> {
    match &opts.roots {
        Some(Roots::File(p)) => {
            read_certs("sslrootcert", p)?;
            std::fs::read(p)
                .map(Some)
                .map_err(|e| format!("sslrootcert {}: {e}", p.display()))
        }
        _ => Ok(None),
    }
}

/// The client certificate and key as PEM bytes, checked to parse (Redis takes them this way).
pub fn client_pem(opts: &TlsOptions) -> Result<Option<redis::ClientTlsConfig>, String> {
    let Some((cert, key)) = &opts.client_cert else {
        return Ok(None);
    };
    read_certs("sslcert", cert)?;
    read_key(key)?;
    let read = |p: &PathBuf, what: &str| {
        std::fs::read(p).map_err(|e| format!("{what} {}: {e}", p.display()))
    };
    Ok(Some(redis::ClientTlsConfig {
        client_cert: read(cert, "sslcert")?,
        client_key: read(key, "sslkey")?,
    }))
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    // libpq refuses a key others can read; so do we (it is as secret as a password).
    super::secret::check_owner_only(path).map_err(|e| format!("sslkey {e}"))?;
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        format!(
            "sslkey {}: cannot read a PEM private key ({e})",
            path.display()
        )
    })
}

fn root_store(roots: &Roots) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::File(p) => {
            for c in read_certs("sslrootcert", p)? {
                store
                    .add(c)
                    .map_err(|e| format!("sslrootcert {}: {e}", p.display()))?;
            }
        }
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(
                    "sslrootcert=system: no trusted root certificate found on this system".into(),
                );
            }
        }
    }
    Ok(store)
}

/// The rustls configuration for `opts` (`None` for `sslmode=disable`).
fn client_config(opts: &TlsOptions) -> Result<Option<Arc<ClientConfig>>, String> {
    if opts.mode == SslMode::Disable {
        return Ok(None);
    }
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?;
    let verify = opts.verify();
    let verifier: Arc<dyn ServerCertVerifier> = match (verify, &opts.roots) {
        (Verify::Nothing, _) | (_, None) => Arc::new(AcceptAnyCert { provider }),
        (_, Some(roots)) => {
            let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(root_store(roots)?),
                provider,
            )
            .build()
            .map_err(|e| format!("sslrootcert: {e}"))?;
            Arc::new(Checked {
                inner: webpki,
                check_host: verify == Verify::ChainAndHost,
            })
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match &opts.client_cert {
        Some((cert, key)) => builder
            .with_client_auth_cert(read_certs("sslcert", cert)?, read_key(key)?)
            .map_err(|e| format!("sslcert {}: {e}", cert.display()))?,
        None => builder.with_no_client_auth(),
    };
    // PostgreSQL 17 checks the ALPN name when a client sends one; older servers ignore it.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(Some(Arc::new(config)))
}

/// `sslmode=prefer` / `require` without roots: encryption without verification (libpq's
/// meaning). The handshake signature is still checked, so the server must hold the key of the
/// certificate it shows.
#[derive(Debug)]
struct AcceptAnyCert {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// webpki's verifier; for `verify-ca` a certificate for another name is accepted once its chain
/// is good (webpki checks the chain first, the name last).
#[derive(Debug)]
struct Checked {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    check_host: bool,
}

impl ServerCertVerifier for Checked {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_host => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// One line for a failed handshake: what failed, with the host.
pub fn describe_tls_error(host: &str, e: &rustls::Error) -> String {
    use CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::NotValidForName | C::NotValidForNameContext { .. } => format!(
                "the certificate of {host} is not valid for the host name {host} (sslmode=verify-full checks it; verify-ca does not)"
            ),
            C::UnknownIssuer => format!(
                "the certificate of {host} is not signed by a trusted CA (check sslrootcert)"
            ),
            C::Expired | C::ExpiredContext { .. } => {
                format!("the certificate of {host} has expired")
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                format!("the certificate of {host} is not valid yet (check the clock)")
            }
            other => format!("the certificate of {host} was refused: {other:?}"),
        },
        rustls::Error::AlertReceived(a) => {
            format!(
                "{host} refused the TLS handshake ({a:?}: a client certificate needed? see sslcert/sslkey)"
            )
        }
        other => format!("TLS handshake with {host} failed: {other}"),
    }
}

/// Finds a rustls error inside an I/O error (tokio-rustls and the redis client wrap it so).
pub fn rustls_error_in<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(io) = err.downcast_ref::<io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(r) = inner.downcast_ref::<rustls::Error>()
        {
            return Some(r);
        }
        cur = err.source();
    }
    None
}

/// Parses a PostgreSQL connection string that may carry libpq's TLS parameters.
pub fn pg_config(url: &str) -> Result<(postgres::Config, TlsOptions), String> {
    let (rest, opts) = split_url(url)?;
    let config = rest.parse::<postgres::Config>().map_err(|_| {
        "store: the postgres connection string is not valid (expected postgres://user[:password]@host[:port]/database)".to_string()
    })?;
    Ok((config, opts))
}

/// Connects to PostgreSQL with the string's TLS settings; says how the connection turned out.
/// Errors name `target` (the redacted string) and what failed, never the password.
pub fn connect_postgres(
    url: &str,
    target: &str,
    app_name: &str,
    timeout: std::time::Duration,
) -> Result<(postgres::Client, Transport), super::StoreError> {
    use super::StoreError;
    let (mut config, opts) = pg_config(url).map_err(StoreError::Schema)?;
    config.application_name(app_name);
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(timeout);
    }
    let (tls, driver_mode) =
        PgTls::new(&opts).map_err(|e| StoreError::Schema(format!("{target}: {e}")))?;
    config.ssl_mode(driver_mode);
    let client = config.connect(tls.clone()).map_err(|e| {
        let msg = match e.as_db_error() {
            Some(db) => db.message().to_owned(),
            // Our handshake error is the cause: it is the line that says what failed.
            None => match std::error::Error::source(&e) {
                Some(cause) if cause.is::<TlsError>() => cause.to_string(),
                Some(cause) if !e.to_string().contains(&cause.to_string()) => {
                    format!("{e}: {cause}")
                }
                _ => e.to_string(),
            },
        };
        StoreError::Unavailable(format!("cannot connect to {target}: {msg}"))
    })?;
    let negotiated = tls.negotiated();
    let verify = if negotiated.is_some() {
        opts.verify()
    } else {
        Verify::Nothing
    };
    Ok((
        client,
        Transport {
            tls: negotiated,
            verify,
        },
    ))
}

/// A Redis client for `url`, with a `rediss://` URL's roots and client certificate; what the
/// connection will be (the redis client always verifies the chain and the host name).
pub fn redis_client(url: &str) -> Result<(redis::Client, Transport), String> {
    let (rest, opts) = split_url(url)?;
    let invalid = |_| "store: the redis connection string is not valid".to_string();
    if opts.mode == SslMode::Disable {
        let client = redis::Client::open(rest.as_str()).map_err(invalid)?;
        let transport = Transport {
            tls: None,
            verify: Verify::Nothing,
        };
        return Ok((client, transport));
    }
    let root_cert = root_pem(&opts)?;
    let client_tls = client_pem(&opts)?;
    let client = if root_cert.is_none() && client_tls.is_none() {
        redis::Client::open(rest.as_str()).map_err(invalid)?
    } else {
        redis::Client::build_with_tls(
            rest.as_str(),
            redis::TlsCertificates {
                client_tls,
                root_cert,
            },
        )
        .map_err(invalid)?
    };
    let transport = Transport {
        tls: Some("TLS".into()),
        verify: Verify::ChainAndHost,
    };
    Ok((client, transport))
}

/// One line for a failed Redis connection: a certificate problem said plainly with the host.
pub fn describe_redis_error(host: &str, e: &redis::RedisError) -> Option<String> {
    if let Some(r) = rustls_error_in(e) {
        return Some(describe_tls_error(host, r));
    }
    let text = e.to_string();
    let cert = |needle: &str| text.contains(needle);
    if cert("NotValidForName") {
        Some(describe_tls_error(
            host,
            &rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
        ))
    } else if cert("UnknownIssuer") {
        Some(describe_tls_error(
            host,
            &rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        ))
    } else {
        None
    }
}

/// The PostgreSQL connector: `postgres::Config::connect(PgTls …)`. It records what the
/// handshake gave (version) so the store can say whether the connection is encrypted.
#[derive(Clone)]
pub struct PgTls {
    config: Option<Arc<ClientConfig>>,
    negotiated: Arc<Mutex<Option<String>>>,
}

impl PgTls {
    /// Builds the connector and tells the driver's own `sslmode` (it knows disable / prefer /
    /// require; verification is ours).
    pub fn new(opts: &TlsOptions) -> Result<(PgTls, postgres::config::SslMode), String> {
        let driver_mode = match opts.mode {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            _ => postgres::config::SslMode::Require,
        };
        Ok((
            PgTls {
                config: client_config(opts)?,
                negotiated: Arc::new(Mutex::new(None)),
            },
            driver_mode,
        ))
    }

    /// The TLS version once the handshake succeeded; `None` while or when plain.
    pub fn negotiated(&self) -> Option<String> {
        self.negotiated.lock().ok()?.clone()
    }
}

pub struct PgTlsConnect {
    config: Option<Arc<ClientConfig>>,
    host: String,
    negotiated: Arc<Mutex<Option<String>>>,
}

#[derive(Debug)]
pub struct TlsError(String);

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

impl<S> MakeTlsConnect<S> for PgTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTlsStream<S>;
    type TlsConnect = PgTlsConnect;
    type Error = TlsError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<PgTlsConnect, TlsError> {
        Ok(PgTlsConnect {
            config: self.config.clone(),
            host: domain.to_owned(),
            negotiated: self.negotiated.clone(),
        })
    }
}

impl<S> TlsConnect<S> for PgTlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTlsStream<S>;
    type Error = TlsError;
    type Future = Pin<Box<dyn Future<Output = Result<PgTlsStream<S>, TlsError>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let Some(config) = self.config else {
                return Err(TlsError("tls is disabled (sslmode=disable)".into()));
            };
            let name = ServerName::try_from(self.host.clone())
                .map_err(|_| TlsError(format!("{}: not a valid TLS server name", self.host)))?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await
                .map_err(|e| {
                    TlsError(match rustls_error_in(&e) {
                        Some(r) => describe_tls_error(&self.host, r),
                        None => format!("TLS handshake with {} failed: {e}", self.host),
                    })
                })?;
            let version = tls
                .get_ref()
                .1
                .protocol_version()
                .map(|v| match v {
                    rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".to_owned(),
                    rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".to_owned(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_else(|| "TLS".into());
            if let Ok(mut n) = self.negotiated.lock() {
                *n = Some(version);
            }
            Ok(PgTlsStream(tls))
        })
    }
}

pub struct PgTlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for PgTlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for PgTlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for PgTlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM without channel binding, as libpq's default `channel_binding=prefer` falls
        // back to when the client does not offer it.
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_parameters_leave_the_url_and_keep_the_rest() {
        let (url, o) = split_url(
            "postgres://u:p@db:5432/wa?application_name=x&sslmode=verify-full&sslrootcert=/etc/ca%20x.pem",
        )
        .unwrap();
        assert_eq!(url, "postgres://u:p@db:5432/wa?application_name=x");
        assert_eq!(o.mode, SslMode::VerifyFull);
        assert_eq!(o.roots, Some(Roots::File("/etc/ca x.pem".into())));
        assert_eq!(o.verify(), Verify::ChainAndHost);
        let (url, o) = split_url("postgres://u@db/wa").unwrap();
        assert_eq!(url, "postgres://u@db/wa");
        assert_eq!(o.mode, SslMode::Prefer, "libpq's default");
        assert_eq!(o.verify(), Verify::Nothing);
    }

    #[test]
    fn require_with_a_root_certificate_verifies_the_chain_as_libpq_does() {
        let (_, o) = split_url("postgres://db/wa?sslmode=require").unwrap();
        assert_eq!(o.verify(), Verify::Nothing);
        let (_, o) = split_url("postgres://db/wa?sslmode=require&sslrootcert=/ca.pem").unwrap();
        assert_eq!(o.verify(), Verify::Chain);
        let (_, o) = split_url("postgres://db/wa?sslmode=verify-ca&sslrootcert=system").unwrap();
        assert_eq!((o.verify(), o.roots), (Verify::Chain, Some(Roots::System)));
    }

    #[test]
    fn bad_tls_parameters_are_named_and_never_echo_the_url() {
        for (url, wanted) in [
            (
                "postgres://u:s3cret@db/wa?sslmode=verify-full",
                "needs sslrootcert",
            ),
            (
                "postgres://u:s3cret@db/wa?sslmode=allow",
                "allow is not supported",
            ),
            ("postgres://u:s3cret@db/wa?sslmode=bogus", "not one of"),
            ("postgres://u:s3cret@db/wa?sslcert=/c.pem", "go together"),
            (
                "redis://:s3cret@r:6379?sslrootcert=/ca.pem",
                "need rediss://",
            ),
            ("rediss://:s3cret@r:6380?sslmode=require", "for postgres://"),
        ] {
            let e = split_url(url).unwrap_err();
            assert!(e.contains(wanted), "{url}: {e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
    }

    #[test]
    fn rediss_is_verified_against_the_system_or_the_given_roots() {
        let (url, o) = split_url("rediss://u:p@r:6380/0?sslrootcert=/ca.pem").unwrap();
        assert_eq!(url, "rediss://u:p@r:6380/0");
        assert_eq!(o.verify(), Verify::ChainAndHost);
        let (_, o) = split_url("redis://r:6379").unwrap();
        assert_eq!(o.mode, SslMode::Disable);
        let (_, o) = split_url("unix:///run/redis.sock").unwrap();
        assert_eq!(
            o.mode,
            SslMode::Disable,
            "a socket is never said to be encrypted"
        );
    }

    #[test]
    fn transport_says_whether_encrypted_and_what_was_verified() {
        let t = Transport {
            tls: Some("TLS 1.3".into()),
            verify: Verify::ChainAndHost,
        };
        assert_eq!(
            t.to_string(),
            "encrypted (TLS 1.3), verified: certificate chain and host name"
        );
        let plain = Transport {
            tls: None,
            verify: Verify::Nothing,
        };
        assert_eq!(plain.to_string(), "not encrypted");
    }
}
