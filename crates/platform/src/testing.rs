//! `spawn_app` for tests: the real HTTP server on a random port, with the stores
//! of the current test mode (SQLite and the in-process bus, or PostgreSQL with a
//! fresh schema per service and RabbitMQ), a settable clock, and tokens minted by
//! the local key the server trusts.

use std::path::PathBuf;
use std::sync::Arc;

use storage::testing::{distributed, test_database_url, unique_name};

use crate::{Running, Service, StartOptions};

/// A running app and what a test needs to call it.
pub struct TestApp {
    pub running: Running,
    pub base: String,
    pub data_dir: PathBuf,
    pub clock: calendar::FixedClock,
    pub settings: settings::Settings,
    signer: auth::LocalSigner,
}

/// The settings of the current test mode, with a data dir of its own.
pub fn test_settings(data_dir: &std::path::Path) -> settings::Settings {
    let mut s = settings::Settings::default();
    s.http.bind = "127.0.0.1:0".into();
    s.http.workers = 2;
    s.http.shutdown_grace_secs = 5;
    s.storage.data_dir = data_dir.to_path_buf();
    s.calendar.dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/calendar"
    ));
    s.bus.retry_delays_ms = vec![100, 300];
    s.bus.max_attempts = 3;
    s.bus.relay_poll_ms = 50;
    s.meals.close_poll_ms = 100;
    if distributed() {
        s.storage.database_url = test_database_url();
        s.bus.backend = settings::BusBackend::Rabbitmq;
        // Replicas share their secrets' keys through the configuration.
        s.secrets.keys.insert(
            "t1".into(),
            "dGVzdC1rZXktb2YtdGhpcnR5LXR3by1ieXRlcy0xMjM".into(),
        );
        s.secrets.current = "t1".into();
        // An exchange of its own, and only the queues of the services it runs:
        // what one test publishes reaches no other test's queues. The queues'
        // names are the services' own, so a payments-only test's balance
        // events would otherwise pile up, unconsumed, in the meals queue that
        // every later meals test must drain first (20,000 after the registry
        // tests alone, enough to time a meals test out).
        s.bus.exchange = unique_name("t_portal");
        // Queues of its own too: tests of one binary run at once, and two
        // consumers of one `payments.meal-debits` would take each other's
        // messages into the wrong test's database.
        s.bus.queue_prefix = format!("{}.", s.bus.exchange);
        s.bus.declare_all_queues = false;
        if let Ok(url) = std::env::var("PORTAL_TEST_AMQP_URL") {
            s.bus.amqp_url = url;
        }
    }
    s
}

impl TestApp {
    /// Starts `services` at `clock` time. In distributed mode each service gets a
    /// fresh schema.
    pub async fn spawn(services: Vec<Arc<dyn Service>>, clock: calendar::FixedClock) -> TestApp {
        Self::spawn_configured(services, clock, |_| {}).await
    }

    /// [`TestApp::spawn`] with settings changed by `configure` first.
    pub async fn spawn_configured(
        services: Vec<Arc<dyn Service>>,
        clock: calendar::FixedClock,
        configure: impl FnOnce(&mut settings::Settings),
    ) -> TestApp {
        let data_dir = std::env::temp_dir().join(unique_name("portal-app"));
        std::fs::create_dir_all(&data_dir).expect("temp dir");
        let mut settings = test_settings(&data_dir);
        if distributed() {
            for s in &services {
                settings.services.insert(
                    s.name().to_string(),
                    settings::ServiceSettings {
                        schema: Some(unique_name(&format!("t_{}", s.name()))),
                        ..Default::default()
                    },
                );
            }
        }
        configure(&mut settings);
        Self::spawn_with(services, clock, settings).await
    }

    pub async fn spawn_with(
        services: Vec<Arc<dyn Service>>,
        clock: calendar::FixedClock,
        settings: settings::Settings,
    ) -> TestApp {
        let data_dir = settings.storage.data_dir.clone();
        let signer = auth::LocalSigner::load_or_create(&data_dir.join("keys")).expect("local key");
        let running = crate::start(StartOptions {
            settings: settings.clone(),
            services,
            clock: Arc::new(clock.clone()),
            bind: None,
        })
        .await
        .expect("app starts");
        let base = format!("http://{}", running.addr);
        TestApp {
            running,
            base,
            data_dir,
            clock,
            settings,
            signer,
        }
    }

    /// A token for `subject` with `roles` and the scopes set by `scope`.
    pub fn token(
        &self,
        subject: &str,
        roles: &[auth::Role],
        scope: impl FnOnce(&mut auth::MintRequest),
    ) -> String {
        let mut request = auth::MintRequest::new(subject, roles.to_vec());
        scope(&mut request);
        self.signer.mint(&request).expect("mint")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `https://127.0.0.1:<port><path>` on the TLS listener (`http.tls.bind`).
    pub fn tls_url(&self, path: &str) -> String {
        let addr = self.running.tls_addr.expect("http.tls.bind is set");
        format!("https://{addr}{path}")
    }

    /// The context of service `name`, for direct database checks.
    pub fn context(&self, name: &str) -> &crate::ServiceContext {
        self.running
            .contexts
            .iter()
            .find(|c| c.name == name)
            .expect("service is running")
    }

    pub async fn stop(self) {
        let names: Vec<&str> = self.running.contexts.iter().map(|c| c.name).collect();
        self.running.stop().await;
        let _ = std::fs::remove_dir_all(&self.data_dir);
        // The test's own exchange goes with it (its bindings too), so a
        // developer's broker does not collect one per test run.
        if distributed() {
            if let Err(e) = bus::rabbit::delete_exchange(&self.settings.bus).await {
                tracing::warn!("could not delete the test exchange: {e}");
            }
            for q in contracts::topology()
                .iter()
                .filter(|q| names.contains(&q.consumer))
            {
                let queue = bus::QueueSpec::new(q.queue, q.bindings)
                    .prefixed(&self.settings.bus.queue_prefix)
                    .queue;
                if let Err(e) = bus::rabbit::delete_queue(&self.settings.bus, &queue).await {
                    tracing::warn!("could not delete the test queue {queue}: {e}");
                }
            }
        }
    }
}
