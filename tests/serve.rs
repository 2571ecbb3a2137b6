//! The real `portal` binary, started as a user starts it: from a clean directory
//! (embedded mode), or as one service of the distributed set-up on PostgreSQL and
//! RabbitMQ. It must answer /health/ready, serve the API with a token minted by
//! `portal token`, and stop gracefully on SIGTERM.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use storage::testing::{distributed, test_database_url, unique_name};

const BIN: &str = env!("CARGO_BIN_EXE_portal");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Portal {
    child: Child,
    base: String,
    dir: PathBuf,
    env: Vec<(String, String)>,
    args: Vec<String>,
}

impl Portal {
    /// `portal serve` in a fresh directory, with the stores of the test mode.
    fn start() -> Portal {
        Portal::start_with(&[])
    }

    /// [`Portal::start`] with more arguments to `serve`.
    fn start_with(extra: &[&str]) -> Portal {
        let dir = std::env::temp_dir().join(unique_name("portal-bin"));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        // Nothing of the repository beside it: the configuration and the
        // production calendar are compiled in.
        let mut env = vec![("PORTAL_HTTP__BIND".to_string(), format!("127.0.0.1:{port}"))];
        let mut args = vec!["serve".to_string()];
        if distributed() {
            // One service as its own process, as docker-compose runs it; tokens are
            // verified against a JWKS file, as in production.
            let keys = dir.join("data/keys");
            auth::LocalSigner::load_or_create(&keys).unwrap();
            args.extend(["--service", "payments", "--config", "distributed"].map(String::from));
            env.extend([
                (
                    "PORTAL_SECRETS__KEY_FILE".to_string(),
                    dir.join("data/keys/secrets.toml").display().to_string(),
                ),
                (
                    "PORTAL_STORAGE__DATABASE_URL".to_string(),
                    test_database_url(),
                ),
                (
                    "PORTAL_SERVICES__PAYMENTS__SCHEMA".to_string(),
                    unique_name("t_bin"),
                ),
                (
                    "PORTAL_BUS__AMQP_URL".to_string(),
                    std::env::var("PORTAL_TEST_AMQP_URL")
                        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into()),
                ),
                (
                    "PORTAL_AUTH__JWKS_PATH".to_string(),
                    keys.join("jwks.json").display().to_string(),
                ),
                (
                    "PORTAL_STORAGE__DATA_DIR".to_string(),
                    dir.join("data").display().to_string(),
                ),
                ("PORTAL_HTTP__BIND".to_string(), format!("127.0.0.1:{port}")),
            ]);
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        if distributed() {
            // Replicas share one key file; on PostgreSQL none is invented.
            let out = Command::new(BIN)
                .args(["--config", "distributed", "secrets", "init"])
                .current_dir(&dir)
                .envs(env.clone())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let child = Command::new(BIN)
            .args(&args)
            .current_dir(&dir)
            .envs(env.clone())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Portal {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
            env,
            args,
        }
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut all: Vec<String> = Vec::new();
        // The same configuration as the server, for the CLI commands.
        if let Some(pos) = self.args.iter().position(|a| a == "--config") {
            all.push("--config".into());
            all.push(self.args[pos + 1].clone());
        }
        all.extend(args.iter().map(|s| s.to_string()));
        Command::new(BIN)
            .args(&all)
            .current_dir(&self.dir)
            .envs(self.env.clone())
            .output()
            .unwrap()
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("portal exited early with {status}");
            }
            if let Ok(res) = reqwest::get(format!("{}/health/ready", self.base)).await {
                if res.status() == 200 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "portal never became ready");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Opens the personal account `account` over REST as `operator`.
    async fn open_account(&self, operator: &str, account: &str) {
        let res = reqwest::Client::new()
            .post(format!("{}/api/payments/accounts", self.base))
            .bearer_auth(operator)
            .json(&json!({
                "account": account, "student_name": "Петрова Анна", "school": "s1",
                "class_name": "1Б", "municipality": "tyumen", "organizer": "org-1"
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }

    /// Stops the process gracefully (unless it is stopped) and starts it again
    /// in the same directory with the same configuration.
    async fn restart(&mut self) {
        self.stop();
        self.child = Command::new(BIN)
            .args(&self.args)
            .current_dir(&self.dir)
            .envs(self.env.clone())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.wait_ready().await;
    }

    /// SIGTERM, then the process must exit on its own, successfully.
    fn terminate(mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// SIGTERM, then the process must exit on its own, successfully; a process
    /// stopped before stays stopped.
    fn stop(&mut self) {
        if self.child.try_wait().unwrap().is_some() {
            return;
        }
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "portal exited with {status} after SIGTERM"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "portal did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Portal {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn data_dir(p: &Path) -> PathBuf {
    p.join("data")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_serves_from_a_clean_directory_and_stops_gracefully() {
    let mut portal = Portal::start();
    portal.wait_ready().await;
    let http = reqwest::Client::new();

    let ready: Value = http
        .get(format!("{}/health/ready", portal.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    let live = http
        .get(format!("{}/health/live", portal.base))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    if !distributed() {
        assert!(
            data_dir(&portal.dir).join("payments.db").is_file(),
            "SQLite file under ./data"
        );
        assert_eq!(ready["checks"]["bus.memory"], "ok");
    } else {
        assert_eq!(ready["checks"]["bus.rabbitmq"], "ok");
    }

    // `portal token` mints a token the server accepts.
    let out = portal.cli(&["token", "--role", "operator_admin", "--subject", "op-1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let operator = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let out = portal.cli(&["token", "--role", "chef", "--subject", "x"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("chef"),
        "the error names the bad role"
    );

    portal.open_account(&operator, "ls-1").await;
    let res = http
        .get(format!("{}/api/payments/accounts/ls-1", portal.base))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    let account: Value = res.json().await.unwrap();
    assert_eq!(account["balance"], "0.00");

    let docs: Value = http
        .get(format!("{}/api/docs", portal.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(docs["openapi"].as_str().unwrap().starts_with("3."));

    // A registry imported by the operator from the command line, twice.
    let registry = portal.dir.join("sber-20260914.csv");
    let text = "T1;ls-1;100,00;14.09.2026 10:01:00;Петров\r\nT2;ls-404;40.00;14.09.2026 11:00:00;Неизвестный\r\nИТОГО;2;140.00\r\n";
    std::fs::write(&registry, encoding_rs::WINDOWS_1251.encode(text).0).unwrap();
    let path = registry.display().to_string();
    let out = portal.cli(&[
        "registry",
        "import",
        &path,
        "--bank",
        "sber",
        "--date",
        "2026-09-14",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(printed.contains("2 lines, 140.00"), "{printed}");
    assert!(
        printed.contains("credited") && printed.contains("unknown_account"),
        "{printed}"
    );
    let out = portal.cli(&[
        "registry",
        "import",
        &path,
        "--bank",
        "sber",
        "--date",
        "2026-09-14",
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported before"));
    let res = http
        .get(format!("{}/api/payments/accounts/ls-1", portal.base))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    let account: Value = res.json().await.unwrap();
    assert_eq!(
        account["balance"], "100.00",
        "the cash-desk payment was credited"
    );

    let out = portal.cli(&["dlq", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("no dead letters"));
    let out = portal.cli(&["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("payments: migrations applied"));

    portal.terminate();
}

#[test]
fn a_bad_configuration_value_stops_start_up_naming_the_key() {
    let out = Command::new(BIN)
        .args(["serve"])
        .current_dir(repo())
        .env("PORTAL_BUS__PREFETCH", "many")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bus.prefetch"), "{err}");

    let out = Command::new(BIN)
        .args(["serve", "--service", "kitchen"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown service `kitchen`"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settable_clock_runs_the_embedded_platform_from_a_chosen_time() {
    // Refused with the distributed stores, and a time that does not parse is named.
    let dir = std::env::temp_dir().join(unique_name("portal-clock"));
    std::fs::create_dir_all(&dir).unwrap();
    for (args, expected) in [
        (
            vec![
                "serve",
                "--config",
                "distributed",
                "--clock",
                "2026-05-12T10:00",
            ],
            "embedded mode only",
        ),
        (
            vec!["serve", "--clock", "12.05.2026 10:00"],
            "\"12.05.2026 10:00\"",
        ),
    ] {
        let out = Command::new(BIN)
            .args(&args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    if distributed() {
        return;
    }

    // An hour of the platform's time a real minute: movements are dated by it.
    let mut portal = Portal::start_with(&["--clock", "2026-05-12T10:00", "--speed", "60"]);
    portal.wait_ready().await;
    let out = portal.cli(&["token", "--role", "operator_admin", "--subject", "op-1"]);
    let operator = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let http = reqwest::Client::new();
    portal.open_account(&operator, "ls-1").await;
    let adjust = |key: &'static str| {
        http.post(format!(
            "{}/api/payments/accounts/ls-1/adjustments",
            portal.base
        ))
        .bearer_auth(&operator)
        .header("Idempotency-Key", key)
        .json(&json!({ "amount": "100.00", "reason": "cash paid at the school office" }))
        .send()
    };
    assert_eq!(adjust("k-1").await.unwrap().status(), 201);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(adjust("k-2").await.unwrap().status(), 201);
    let page: Value = http
        .get(format!(
            "{}/api/payments/accounts/ls-1/movements",
            portal.base
        ))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let at = |i: usize| {
        chrono::DateTime::parse_from_rfc3339(page["items"][i]["at"].as_str().unwrap()).unwrap()
    };
    let (second, first) = (at(0), at(1));
    assert!(
        first.to_rfc3339().starts_with("2026-05-12T10:"),
        "{first} is not the chosen day and hour"
    );
    let apart = (second - first).num_seconds();
    assert!(
        (150..=600).contains(&apart),
        "3 real seconds at speed 60 are 3 minutes, not {apart} s"
    );
    portal.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_secrets_rotate_seals_every_secret_under_a_new_key() {
    let mut portal = Portal::start();
    portal.wait_ready().await;
    let out = portal.cli(&["token", "--role", "operator_admin", "--subject", "op-1"]);
    let operator = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let http = reqwest::Client::new();
    let url = format!("{}/api/payments/organizers/org-1/acquiring", portal.base);
    let settings = |body: Value| http.put(&url).bearer_auth(&operator).json(&body).send();
    let res = settings(json!({
        "base_url": "https://bank.invalid/payment/rest", "merchant_login": "org-1-shop",
        "merchant_password": "pass-1", "callback_secret": "callback-secret-1"
    }))
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let key_file = portal.dir.join("data/keys/secrets.toml");
    let keys_in_file = || {
        let text = std::fs::read_to_string(&key_file).unwrap();
        let file: toml::Value = toml::from_str(&text).unwrap();
        let keys = file["keys"].as_table().unwrap().len();
        (file["current"].as_str().unwrap().to_string(), keys)
    };
    let (first, n) = keys_in_file();
    assert_eq!(n, 1);

    // The processes read their keys at start: rotate while they are down.
    portal.stop();
    let out = portal.cli(&["secrets", "rotate"]);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (second, n) = keys_in_file();
    assert_ne!(second, first);
    assert_eq!(n, 2, "the old key stays until retired");
    assert!(
        said.contains(&format!(
            "payments: 2 secrets sealed again with key {second}"
        )),
        "{said}"
    );
    // Again with --retire-old: nothing left to seal, and only the new key stays.
    let out = portal.cli(&["secrets", "rotate", "--retire-old"]);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{said}");
    let (third, n) = keys_in_file();
    assert_eq!(n, 1);
    assert!(said.contains("payments: 2 secrets sealed again"), "{said}");
    assert!(
        said.contains(&format!("retired keys: {first}, {second}")),
        "{said}"
    );

    // The platform reads the settings with the one key left; saving keeps working.
    portal.restart().await;
    let res = http.get(&url).bearer_auth(&operator).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(
        !text.contains("pass-1") && !text.contains("callback-secret-1"),
        "{text}"
    );
    let res = settings(json!({
        "base_url": "https://bank.invalid/payment/rest", "merchant_login": "org-1-shop"
    }))
    .await
    .unwrap();
    assert_eq!(
        res.status(),
        200,
        "the stored secrets open with key {third}"
    );
    portal.terminate();
}
