//! Layered configuration: defaults compiled in (with `deploy/config/portal.toml` as it
//! was at build time, so the binary starts from any directory), then the
//! `deploy/config/*.toml` beside it, then
//! environment variables (`PORTAL_` prefix, `__` between levels, e.g.
//! `PORTAL_BUS__BACKEND=rabbitmq`). A bad value stops start-up with a message that
//! names the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Prefix of every environment variable the platform reads.
pub const ENV_PREFIX: &str = "PORTAL_";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub http: HttpSettings,
    pub storage: StorageSettings,
    pub bus: BusSettings,
    pub auth: AuthSettings,
    pub telemetry: TelemetrySettings,
    pub calendar: CalendarSettings,
    /// The meals service's day close.
    #[serde(default)]
    pub meals: MealsSettings,
    pub gateway: GatewaySettings,
    /// Keys that seal secrets at rest.
    #[serde(default)]
    pub secrets: SecretsSettings,
    /// Per-service overrides, keyed by service name.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceSettings>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Address the HTTP server binds to, `host:port`.
    pub bind: String,
    /// Seconds an in-flight request may take to finish on shutdown.
    pub shutdown_grace_secs: u64,
    pub workers: usize,
    /// The largest file upload accepted (a bank's payment registry), in MiB;
    /// a larger one answers 413 and changes nothing.
    pub max_upload_mib: u64,
    /// A second, TLS listener (for the SOAP door with participants' client
    /// certificates); none when `tls.bind` is empty.
    #[serde(default)]
    pub tls: TlsSettings,
}

/// The TLS listener (rustls).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// `host:port` of the TLS listener; empty: no TLS listener.
    pub bind: String,
    /// PEM: the server's certificate chain and its private key (PKCS#8).
    pub cert_file: String,
    pub key_file: String,
    /// PEM: the CAs that sign participants' client certificates; empty: no
    /// client certificate is asked for.
    pub client_ca_file: String,
    /// Refuse a TLS connection that shows no client certificate.
    pub require_client_cert: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    /// Directory of the embedded SQLite files and the local signing key.
    pub data_dir: PathBuf,
    /// `postgres://…` selects PostgreSQL (one schema per service); empty selects
    /// one SQLite file per service under `data_dir`.
    pub database_url: String,
    pub pool_size: u32,
    /// Seconds to wait for a pooled connection before the request fails.
    pub connect_timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BusBackend {
    /// In-process bus for the embedded mode.
    Memory,
    /// RabbitMQ through lapin for the distributed mode.
    Rabbitmq,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BusSettings {
    pub backend: BusBackend,
    pub amqp_url: String,
    /// The topic exchange every service publishes to.
    pub exchange: String,
    /// Unacknowledged deliveries a consumer holds at most.
    pub prefetch: u16,
    /// Deliveries of one message before it is dead-lettered.
    pub max_attempts: u32,
    /// Delays before the 2nd, 3rd, … attempt; the last one repeats.
    pub retry_delays_ms: Vec<u64>,
    /// Outbox rows the relay publishes in one batch.
    pub relay_batch: i64,
    /// How often the relay looks for new rows when nobody woke it.
    pub relay_poll_ms: u64,
    /// Default timeout of request/reply calls.
    pub request_timeout_ms: u64,
    /// Declare every service's queues on a broker at start, so what is
    /// published for a service that has not started yet waits in its queue.
    /// `false` declares only the queues of the services this process runs
    /// (the tests that run some services alone, so their messages do not pile
    /// up in queues nobody of theirs consumes).
    pub declare_all_queues: bool,
    /// Put before every queue's name on the broker: two processes with
    /// different prefixes never take each other's messages from one broker
    /// (each test run its own; empty in production).
    #[serde(default)]
    pub queue_prefix: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// A JWKS file; empty with an empty `jwks_url` means the locally generated key
    /// under `data_dir/keys` (embedded mode).
    pub jwks_path: String,
    pub jwks_url: String,
    /// Expected `iss`: a token of another issuer is refused. The embedded
    /// mode's own tokens say `portal-local`; in production, the identity
    /// provider's issuer.
    pub issuer: String,
    /// Expected `aud` (one of the token's audiences): a token minted for
    /// another system is refused.
    pub audience: String,
    /// Seconds of clock skew tolerated on `exp`/`nbf`.
    pub leeway_secs: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    pub log_format: LogFormat,
    /// `tracing` filter directive, e.g. `info,portal=debug`.
    pub log_filter: String,
    /// OTLP/HTTP endpoint (`http://collector:4318`); empty disables export.
    pub otlp_endpoint: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CalendarSettings {
    /// Directory with `ru-YYYY.toml` production calendar files, each replacing
    /// or adding its year over the years compiled into the binary; empty means
    /// the compiled-in years alone.
    pub dir: PathBuf,
}

/// When and how the meals service closes a school day.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MealsSettings {
    /// Tyumen local time at which a school day closes and the write-off starts,
    /// written `HH:MM`.
    #[serde(with = "hh_mm")]
    pub close_at: chrono::NaiveTime,
    /// How often the closer looks for days to close (and catches up after downtime).
    pub close_poll_ms: u64,
    /// How many days back the closer catches up after downtime.
    pub catch_up_days: u32,
}

/// A time of day written `HH:MM` in the configuration.
mod hh_mm {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &chrono::NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.format("%H:%M").to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<chrono::NaiveTime, D::Error> {
        let text = String::deserialize(d)?;
        chrono::NaiveTime::parse_from_str(&text, "%H:%M")
            .map_err(|_| serde::de::Error::custom(format!("`{text}` is not a time of day HH:MM")))
    }
}

impl Default for MealsSettings {
    fn default() -> Self {
        MealsSettings {
            close_at: chrono::NaiveTime::from_hms_opt(23, 0, 0).unwrap_or_default(),
            close_poll_ms: 30_000,
            catch_up_days: 31,
        }
    }
}

/// Which contour a gateway serves: test messages (smev:TestMsg present) or
/// production ones, never both.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Contour {
    Test,
    Production,
}

impl Contour {
    pub fn as_str(self) -> &'static str {
        match self {
            Contour::Test => "test",
            Contour::Production => "production",
        }
    }
}

/// The XML gateway: who this platform is in the SMEV envelope, its contour and
/// its limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySettings {
    /// This platform's participant code: the Recipient of what it receives, the
    /// Sender of what it answers.
    pub code: String,
    /// This platform's name in the envelope.
    pub name: String,
    pub contour: Contour,
    /// The largest SOAP request, MiB; larger is refused (INVALID, HTTP 413).
    pub max_body_mib: u64,
    /// The largest request that carries a document (a bank's registry as
    /// AppDocument, announced by its SOAPAction), MiB: a day of a large bank is
    /// about 95 MiB as base64.
    pub max_document_mib: u64,
    /// How long the gateway waits for a service's answer before it answers FAILURE.
    pub service_timeout_ms: u64,
    /// How long the message log keeps an exchange, days.
    pub log_retention_days: u32,
    /// Outbound calls to participants' own services: how long one may take.
    pub outbound_timeout_ms: u64,
    /// Attempts before a delivery is parked for the operator.
    pub outbound_max_attempts: u32,
    /// The first retry's delay; each next one doubles it, up to an hour.
    pub outbound_retry_ms: u64,
    /// Deliveries in flight to one participant at once.
    pub outbound_per_participant: usize,
    /// Consecutive failures after which a participant's calls pause…
    pub outbound_breaker_failures: u32,
    /// …for this long, before one call tries again.
    pub outbound_breaker_open_ms: u64,
    /// A SOAP request must come over the TLS listener with a client
    /// certificate registered for its Sender (mutual TLS).
    pub require_client_certificate: bool,
    /// A SOAP request must carry the Sender's signature (`wsse:Security`,
    /// actor smev); a badly signed one is refused whether or not this is on.
    pub require_signature: bool,
    /// The gateway's own signing key (PEM: RSA or ГОСТ Р 34.10-2012 256) and
    /// its certificate; with both, answers and outbound calls are signed
    /// (actor recipient).
    pub signing_key_file: Option<String>,
    pub signing_cert_file: Option<String>,
    /// An OpenSSL configuration loaded at start (`OPENSSL_CONF`), the one that
    /// loads the ГОСТ engine: `deploy/openssl-gost.cnf`.
    pub openssl_conf: Option<String>,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            code: "TMNPORTAL".into(),
            name: "Портал услуг Тюменской области".into(),
            contour: Contour::Production,
            max_body_mib: 16,
            max_document_mib: 160,
            service_timeout_ms: 10_000,
            log_retention_days: 1_827,
            outbound_timeout_ms: 10_000,
            outbound_max_attempts: 10,
            outbound_retry_ms: 1_000,
            outbound_per_participant: 4,
            outbound_breaker_failures: 5,
            outbound_breaker_open_ms: 30_000,
            require_client_certificate: false,
            require_signature: false,
            signing_key_file: None,
            signing_cert_file: None,
            openssl_conf: None,
        }
    }
}

/// The keys that seal secrets at rest (acquiring merchant passwords, callback
/// secrets) with AES-256-GCM.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsSettings {
    /// Key id → base64 of 32 random bytes (`openssl rand -base64 32`). Every key
    /// opens what it sealed; `current` seals. Empty: the key file.
    pub keys: BTreeMap<String, String>,
    /// The id of the key that seals, one of `keys`.
    pub current: String,
    /// The key file used when `keys` is empty; `<data_dir>/keys/secrets.toml`
    /// by default, created on the embedded mode's first start.
    pub key_file: PathBuf,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    /// Overrides `storage.database_url` for this service.
    #[serde(default)]
    pub database_url: Option<String>,
    /// PostgreSQL schema of this service; defaults to the service name.
    #[serde(default)]
    pub schema: Option<String>,
    /// Overrides `http.bind` when this service runs alone.
    #[serde(default)]
    pub bind: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            http: HttpSettings {
                bind: "127.0.0.1:8080".into(),
                shutdown_grace_secs: 30,
                workers: 0,
                max_upload_mib: 512,
                tls: TlsSettings::default(),
            },
            storage: StorageSettings {
                data_dir: PathBuf::from("./data"),
                database_url: String::new(),
                pool_size: 8,
                connect_timeout_secs: 10,
            },
            bus: BusSettings {
                backend: BusBackend::Memory,
                amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
                exchange: "portal".into(),
                prefetch: 256,
                max_attempts: 6,
                retry_delays_ms: vec![1_000, 5_000, 30_000, 120_000, 600_000],
                relay_batch: 500,
                relay_poll_ms: 200,
                request_timeout_ms: 10_000,
                declare_all_queues: true,
                queue_prefix: String::new(),
            },
            auth: AuthSettings {
                jwks_path: String::new(),
                jwks_url: String::new(),
                issuer: "portal-local".into(),
                audience: "portal".into(),
                leeway_secs: 30,
            },
            telemetry: TelemetrySettings {
                log_format: LogFormat::Json,
                log_filter: "info".into(),
                otlp_endpoint: String::new(),
            },
            calendar: CalendarSettings {
                dir: PathBuf::new(),
            },
            meals: MealsSettings::default(),
            gateway: GatewaySettings::default(),
            secrets: SecretsSettings::default(),
            services: BTreeMap::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration: {0}")]
    Invalid(String),
}

impl From<figment::Error> for SettingsError {
    fn from(err: figment::Error) -> Self {
        // figment's own message already names the key path and where the value came from.
        let mut messages = Vec::new();
        for e in err {
            let key = e.path.join(".");
            let source = e
                .metadata
                .as_ref()
                .map(|m| m.name.to_string())
                .unwrap_or_else(|| "defaults".into());
            messages.push(format!("key `{key}` (from {source}): {}", e.kind));
        }
        SettingsError::Invalid(messages.join("; "))
    }
}

impl Settings {
    /// Loads defaults, then every `*.toml` in `config_dir` in name order (if the
    /// directory exists), then the explicit `extra_files`, then the environment.
    pub fn load(config_dir: &Path, extra_files: &[PathBuf]) -> Result<Settings, SettingsError> {
        Self::load_with_env(config_dir, extra_files, environment())
    }

    /// Defaults plus the given files only, ignoring the environment (tests).
    pub fn load_files(files: &[PathBuf]) -> Result<Settings, SettingsError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        for f in files {
            figment = figment.merge(Toml::file_exact(f));
        }
        Self::finish(figment)
    }

    fn load_with_env(
        config_dir: &Path,
        extra_files: &[PathBuf],
        env: Env,
    ) -> Result<Settings, SettingsError> {
        let mut figment =
            Figment::from(Serialized::defaults(Settings::default())).merge(Toml::string(BASE_FILE));
        if config_dir.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(config_dir)
                .map_err(|e| {
                    SettingsError::Invalid(format!("cannot read {}: {e}", config_dir.display()))
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml") && is_base_layer(p))
                .collect();
            files.sort();
            for f in files {
                figment = figment.merge(Toml::file_exact(f));
            }
        }
        for f in extra_files {
            if f.is_file() {
                figment = figment.merge(Toml::file_exact(f));
            } else if let Some(text) = builtin_profile(f) {
                figment = figment.merge(Toml::string(text));
            } else {
                return Err(SettingsError::Invalid(format!(
                    "configuration file {} does not exist (built-in profiles: {})",
                    f.display(),
                    PROFILES.join(", ")
                )));
            }
        }
        Self::finish(figment.merge(env))
    }

    fn finish(figment: Figment) -> Result<Settings, SettingsError> {
        let settings: Settings = figment.extract()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks the values serde cannot: ranges and formats.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let bad =
            |key: &str, why: String| Err(SettingsError::Invalid(format!("key `{key}`: {why}")));
        if self.http.bind.parse::<std::net::SocketAddr>().is_err() {
            return bad(
                "http.bind",
                format!("`{}` is not host:port", self.http.bind),
            );
        }
        // A verifier with no issuer or audience would take any signed token
        // the key set verifies, including one minted for another system.
        if self.auth.issuer.trim().is_empty() {
            return bad("auth.issuer", "must name the trusted token issuer".into());
        }
        if self.auth.audience.trim().is_empty() {
            return bad("auth.audience", "must name this platform's audience".into());
        }
        if !self.secrets.keys.is_empty() && !self.secrets.keys.contains_key(&self.secrets.current) {
            return bad(
                "secrets.current",
                format!(
                    "`{}` is not one of the keys in `secrets.keys`",
                    self.secrets.current
                ),
            );
        }
        if self.http.max_upload_mib == 0 {
            return bad("http.max_upload_mib", "must be at least 1".into());
        }
        if self.storage.pool_size == 0 {
            return bad("storage.pool_size", "must be at least 1".into());
        }
        let url = &self.storage.database_url;
        if !url.is_empty() && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return bad(
                "storage.database_url",
                format!("`{url}` must be empty (SQLite) or a postgres:// URL"),
            );
        }
        if !self.bus.amqp_url.starts_with("amqp://") && !self.bus.amqp_url.starts_with("amqps://") {
            return bad(
                "bus.amqp_url",
                format!("`{}` is not an amqp:// URL", self.bus.amqp_url),
            );
        }
        if self.bus.max_attempts == 0 {
            return bad("bus.max_attempts", "must be at least 1".into());
        }
        if self.bus.retry_delays_ms.is_empty() {
            return bad("bus.retry_delays_ms", "needs at least one delay".into());
        }
        if self.bus.prefetch == 0 {
            return bad("bus.prefetch", "must be at least 1".into());
        }
        if self.bus.relay_batch <= 0 {
            return bad("bus.relay_batch", "must be positive".into());
        }
        if self.meals.close_poll_ms == 0 {
            return bad("meals.close_poll_ms", "must be positive".into());
        }
        for (name, svc) in &self.services {
            if let Some(url) = &svc.database_url {
                if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
                    return bad(
                        &format!("services.{name}.database_url"),
                        format!("`{url}` is not a postgres:// URL"),
                    );
                }
            }
            if let Some(schema) = &svc.schema {
                if !is_identifier(schema) {
                    return bad(
                        &format!("services.{name}.schema"),
                        format!("`{schema}` is not a plain SQL identifier"),
                    );
                }
            }
            if let Some(bind) = &svc.bind {
                if bind.parse::<std::net::SocketAddr>().is_err() {
                    return bad(
                        &format!("services.{name}.bind"),
                        format!("`{bind}` is not host:port"),
                    );
                }
            }
        }
        Ok(())
    }

    /// The settings of one service, with defaults where nothing is overridden.
    pub fn service(&self, name: &str) -> ServiceSettings {
        self.services.get(name).cloned().unwrap_or_default()
    }

    /// The database URL a service uses: its own override, else the shared one.
    pub fn database_url_for(&self, service: &str) -> String {
        self.service(service)
            .database_url
            .unwrap_or_else(|| self.storage.database_url.clone())
    }

    /// Whether the configured stores are the distributed ones.
    pub fn is_distributed(&self) -> bool {
        self.bus.backend == BusBackend::Rabbitmq || !self.storage.database_url.is_empty()
    }
}

/// `PORTAL_…` variables, less those that are not configuration keys: the
/// location of the configuration itself and the test harness's own.
fn environment() -> Env {
    Env::prefixed(ENV_PREFIX)
        .filter(|key| {
            let key = key.as_str().to_ascii_lowercase();
            key != "config_dir" && !key.starts_with("test_")
        })
        .split("__")
}

/// Files in the config directory that name a profile (`distributed.toml`) are only
/// read when asked for; the rest form the base layer.
fn is_base_layer(path: &Path) -> bool {
    path.file_stem()
        .and_then(|s| s.to_str())
        .is_some_and(|s| !PROFILES.contains(&s))
}

/// Profile files in `deploy/config/` selected with `--config`.
pub const PROFILES: &[&str] = &["distributed", "production"];

/// `deploy/config/portal.toml` as it was at build time: the base layer when no
/// configuration directory is beside the binary.
const BASE_FILE: &str = include_str!("../../../deploy/config/portal.toml");

/// The profiles' files as they were at build time.
const PROFILE_FILES: &[(&str, &str)] = &[
    (
        "distributed",
        include_str!("../../../deploy/config/distributed.toml"),
    ),
    (
        "production",
        include_str!("../../../deploy/config/production.toml"),
    ),
];

/// A profile asked for by name (`--config distributed`) or by its path in the
/// repository (`--config deploy/config/distributed.toml`) where no such file is
/// beside the binary: the compiled-in copy.
fn builtin_profile(asked: &Path) -> Option<&'static str> {
    let stem = asked.file_stem()?.to_str()?;
    let by_name = asked.as_os_str() == stem;
    let by_path = asked == Path::new("deploy/config").join(format!("{stem}.toml"));
    if !(by_name || by_path) {
        return None;
    }
    PROFILE_FILES
        .iter()
        .find(|(name, _)| *name == stem)
        .map(|(_, text)| *text)
}

/// A plain lower-case SQL identifier (used for schema names).
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Every environment variable name the configuration understands, for checks of
/// deployment files (docker-compose, systemd units).
pub fn known_env_keys() -> Vec<String> {
    let value = serde_json::to_value(Settings::default()).unwrap_or_default();
    let mut keys = Vec::new();
    collect_keys(&value, String::new(), &mut keys);
    keys
}

fn collect_keys(value: &serde_json::Value, prefix: String, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let name = if prefix.is_empty() {
                    k.to_uppercase()
                } else {
                    format!("{prefix}__{}", k.to_uppercase())
                };
                collect_keys(v, name, out);
            }
        }
        _ => out.push(format!("{ENV_PREFIX}{prefix}")),
    }
}

/// Whether `PORTAL_…` names a key the configuration understands; service overrides
/// (`PORTAL_SERVICES__<NAME>__DATABASE_URL`) are accepted for any service name.
pub fn is_known_env_key(name: &str) -> bool {
    if known_env_keys().iter().any(|k| k == name) {
        return true;
    }
    if name
        .strip_prefix("PORTAL_SECRETS__KEYS__")
        .is_some_and(|id| !id.is_empty())
    {
        return true;
    }
    let Some(rest) = name.strip_prefix("PORTAL_SERVICES__") else {
        return false;
    };
    let mut parts = rest.splitn(2, "__");
    let _service = parts.next();
    matches!(parts.next(), Some("DATABASE_URL" | "SCHEMA" | "BIND"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn defaults_are_embedded_and_valid() {
        let s = Settings::default();
        s.validate().unwrap();
        assert!(!s.is_distributed());
        assert_eq!(s.bus.backend, BusBackend::Memory);
    }

    #[test]
    fn environment_overrides_file_and_names_bad_key() {
        Jail::expect_with(|jail| {
            jail.create_file("base.toml", "[http]\nbind = \"0.0.0.0:9000\"\n")?;
            jail.set_env("PORTAL_BUS__BACKEND", "rabbitmq");
            let s = Settings::load(Path::new("."), &[]).unwrap();
            assert_eq!(s.http.bind, "0.0.0.0:9000");
            assert_eq!(s.bus.backend, BusBackend::Rabbitmq);

            jail.set_env("PORTAL_BUS__PREFETCH", "lots");
            let err = Settings::load(Path::new("."), &[]).unwrap_err().to_string();
            assert!(err.contains("bus.prefetch"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn semantic_errors_name_the_key() {
        Jail::expect_with(|jail| {
            jail.set_env("PORTAL_STORAGE__DATABASE_URL", "mysql://x");
            let err = Settings::load(Path::new("."), &[]).unwrap_err().to_string();
            assert!(err.contains("storage.database_url"), "{err}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.create_file("base.toml", "[http]\nbindd = \"x\"\n")?;
            let err = Settings::load(Path::new("."), &[]).unwrap_err().to_string();
            assert!(err.contains("bindd"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn the_close_time_is_a_time_of_day_or_start_fails_naming_it() {
        Jail::expect_with(|jail| {
            jail.set_env("PORTAL_MEALS__CLOSE_AT", "22:30");
            let s = Settings::load(Path::new("."), &[]).unwrap();
            assert_eq!(
                s.meals.close_at,
                chrono::NaiveTime::from_hms_opt(22, 30, 0).unwrap()
            );
            jail.set_env("PORTAL_MEALS__CLOSE_AT", "25:99");
            let err = Settings::load(Path::new("."), &[]).unwrap_err().to_string();
            assert!(
                err.contains("meals.close_at") && err.contains("25:99"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn profile_files_are_read_only_when_named() {
        Jail::expect_with(|jail| {
            jail.create_file("distributed.toml", "[bus]\nbackend = \"rabbitmq\"\n")?;
            let s = Settings::load(Path::new("."), &[]).unwrap();
            assert_eq!(s.bus.backend, BusBackend::Memory);
            let s = Settings::load(Path::new("."), &[PathBuf::from("distributed.toml")]).unwrap();
            assert_eq!(s.bus.backend, BusBackend::Rabbitmq);
            Ok(())
        });
    }

    #[test]
    fn with_no_configuration_beside_it_the_compiled_in_files_serve() {
        Jail::expect_with(|_jail| {
            let s = Settings::load(Path::new("deploy/config"), &[]).unwrap();
            assert_eq!(s.bus.backend, BusBackend::Memory);
            assert_eq!(s.calendar.dir, PathBuf::new());
            for asked in ["distributed", "deploy/config/distributed.toml"] {
                let s =
                    Settings::load(Path::new("deploy/config"), &[PathBuf::from(asked)]).unwrap();
                assert_eq!(s.bus.backend, BusBackend::Rabbitmq, "{asked}");
                assert_eq!(s.auth.jwks_path, "/etc/portal/jwks.json");
            }
            let err = Settings::load(
                Path::new("."),
                &[PathBuf::from("elsewhere/distributed.toml")],
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("does not exist"), "{err}");
            assert!(err.contains("built-in profiles: distributed"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn the_production_profile_takes_soap_over_mutual_tls_only() {
        Jail::expect_with(|_jail| {
            let embedded = Settings::load(Path::new("deploy/config"), &[]).unwrap();
            assert!(!embedded.gateway.require_client_certificate);
            assert!(
                embedded.http.tls.bind.is_empty(),
                "no TLS listener by default"
            );
            let s = Settings::load(
                Path::new("deploy/config"),
                &[PathBuf::from("distributed"), PathBuf::from("production")],
            )
            .unwrap();
            assert!(s.gateway.require_client_certificate);
            assert!(s.gateway.require_signature);
            assert!(!embedded.gateway.require_signature);
            assert_eq!(
                s.gateway.openssl_conf.as_deref(),
                Some("/etc/portal/openssl-gost.cnf")
            );
            assert!(s.gateway.signing_key_file.is_some() && s.gateway.signing_cert_file.is_some());
            assert!(s.http.tls.require_client_cert);
            assert_eq!(s.http.tls.bind, "0.0.0.0:8443");
            assert_eq!(s.bus.backend, BusBackend::Rabbitmq, "on top of distributed");
            Ok(())
        });
    }

    #[test]
    fn env_keys_cover_nested_settings() {
        assert!(is_known_env_key("PORTAL_BUS__AMQP_URL"));
        assert!(is_known_env_key("PORTAL_SERVICES__MEALS__DATABASE_URL"));
        assert!(!is_known_env_key("PORTAL_BUS__AMQP"));
    }
}
