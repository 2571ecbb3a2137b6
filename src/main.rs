//! `portal`: every service of the platform in one binary.
//!
//! - `portal` / `portal serve`: all services in one process on one port (embedded
//!   mode by default: SQLite under ./data, the in-process bus).
//! - `portal serve --service payments`: one service, on the stores configured
//!   (PostgreSQL and RabbitMQ in the distributed mode).
//! - `portal migrate`, `portal token`, `portal dlq list|replay`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "portal",
    version,
    about = "Tyumen region e-services portal and school meal accounting"
)]
struct Cli {
    /// Extra configuration files, read after deploy/config/*.toml and before the
    /// environment (e.g. deploy/config/distributed.toml); a profile's name
    /// (`distributed`) is its compiled-in copy where no such file exists.
    #[arg(long = "config", global = true)]
    config: Vec<PathBuf>,
    /// Directory of the base configuration files, read over the compiled-in
    /// base configuration if it exists.
    #[arg(
        long,
        global = true,
        env = "PORTAL_CONFIG_DIR",
        default_value = "deploy/config"
    )]
    config_dir: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP: all services, or only those named.
    Serve {
        #[arg(long = "service")]
        services: Vec<String>,
        /// Address to bind, overriding the configuration.
        #[arg(long)]
        bind: Option<String>,
        /// Run on a clock that starts at this Tyumen time (`2026-05-12T10:00`)
        /// instead of the real one: training, demos, an integrator's test
        /// contour. Embedded mode only; refused with the distributed stores.
        #[arg(long, value_name = "YYYY-MM-DDTHH:MM")]
        clock: Option<String>,
        /// With --clock: how many seconds of the platform's time pass in one
        /// real second (60: an hour a minute).
        #[arg(long, default_value_t = 1, requires = "clock", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        speed: u32,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        #[arg(long = "service")]
        services: Vec<String>,
    },
    /// Mint a bearer token signed with the local key (embedded mode).
    Token(TokenArgs),
    /// Inspect and replay dead-lettered messages.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Keys of the secrets kept at rest (acquiring passwords, callback secrets).
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Payment registries of the banks.
    Registry {
        #[command(subcommand)]
        command: RegistryCommand,
    },
    /// The XML gateway.
    Gateway {
        #[command(subcommand)]
        command: GatewayCommand,
    },
}

#[derive(Subcommand)]
enum GatewayCommand {
    /// Walk the message log's hash chain and report every record altered or
    /// removed; exits 1 if any.
    VerifyLog,
}

#[derive(Subcommand)]
enum RegistryCommand {
    /// Import a bank's registry file (CSV in Windows-1251 or XML), with a progress bar.
    Import {
        file: PathBuf,
        #[arg(long)]
        bank: String,
        /// The registry's day, YYYY-MM-DD (required for CSV).
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
        /// csv or xml; by default from the file's extension.
        #[arg(long)]
        format: Option<String>,
    },
}

#[derive(clap::Args)]
struct TokenArgs {
    /// Role(s) of the subject: parent, class_teacher, meal_admin, meal_organizer,
    /// municipal_officer, operator_admin, bank, information_system.
    #[arg(long = "role", required = true)]
    roles: Vec<String>,
    #[arg(long)]
    subject: String,
    #[arg(long)]
    name: Option<String>,
    #[arg(long = "school")]
    schools: Vec<String>,
    #[arg(long = "class")]
    classes: Vec<String>,
    #[arg(long = "organizer")]
    organizers: Vec<String>,
    #[arg(long = "municipality")]
    municipalities: Vec<String>,
    #[arg(long = "bank")]
    banks: Vec<String>,
    #[arg(long = "child")]
    children: Vec<String>,
    #[arg(long)]
    participant: Option<String>,
    #[arg(long, default_value_t = 12)]
    ttl_hours: i64,
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Create the key file (`secrets.key_file`) with one fresh key, unless it
    /// exists: for replicas that share the file.
    Init,
    /// Seal every stored secret again under a new key: with the key file, a
    /// fresh key is added and made current (the old ones stay to open what they
    /// sealed); with `secrets.keys`, the configured `current` one.
    Rotate {
        /// After sealing, remove every key but the current one from the key file.
        #[arg(long)]
        retire_old: bool,
    },
}

#[derive(Subcommand)]
enum DlqCommand {
    /// List dead letters (not yet replayed, or all with --all).
    List {
        #[arg(long = "service")]
        services: Vec<String>,
        #[arg(long)]
        all: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Put dead letters back on their queue (through the outbox).
    Replay {
        #[arg(long)]
        service: String,
        /// Ids from `dlq list`; none with --all replays every open letter.
        ids: Vec<i64>,
        #[arg(long)]
        all: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("portal: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let settings =
        settings::Settings::load(&cli.config_dir, &cli.config).map_err(|e| e.to_string())?;
    platform::tls::use_openssl_conf(settings.gateway.openssl_conf.as_deref());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    match cli.command.unwrap_or(Command::Serve {
        services: Vec::new(),
        bind: None,
        clock: None,
        speed: 1,
    }) {
        Command::Serve {
            services,
            bind,
            clock,
            speed,
        } => {
            let clock = clock
                .map(|at| moving_clock(&settings, &at, speed))
                .transpose()?;
            runtime.block_on(serve(settings, &services, bind, clock))
        }
        Command::Migrate { services } => migrate(&settings, &services),
        Command::Token(args) => token(&settings, args),
        Command::Dlq { command } => dlq(&settings, command),
        Command::Registry { command } => registry(&settings, command),
        Command::Secrets { command } => secrets(&settings, command),
        Command::Gateway { command } => gateway_command(&settings, command),
    }
}

fn gateway_command(settings: &settings::Settings, command: GatewayCommand) -> Result<(), String> {
    let GatewayCommand::VerifyLog = command;
    let db = migrated_db(settings, &gateway::GatewayService)?;
    let mut conn = db.conn().map_err(|e| e.to_string())?;
    let v = gateway::log::verify(&mut conn).map_err(|e| e.to_string())?;
    let range = match (v.first, v.last) {
        (Some(a), Some(b)) => format!("records {a}–{b}"),
        _ => "no records".into(),
    };
    if v.breaks.is_empty() {
        println!("message log intact: {} checked ({range})", v.checked);
        return Ok(());
    }
    for b in &v.breaks {
        println!("BROKEN: {b}");
    }
    Err(format!(
        "the message log was tampered with: {} break(s) in {} records ({range})",
        v.breaks.len(),
        v.checked
    ))
}

fn select(names: &[String]) -> Result<Vec<Arc<dyn platform::Service>>, String> {
    let all = portal::services();
    if names.is_empty() {
        return Ok(all);
    }
    names
        .iter()
        .map(|n| {
            all.iter().find(|s| s.name() == n).cloned().ok_or_else(|| {
                let known: Vec<&str> = all.iter().map(|s| s.name()).collect();
                format!("unknown service `{n}`; services are: {}", known.join(", "))
            })
        })
        .collect()
}

async fn serve(
    settings: settings::Settings,
    names: &[String],
    bind: Option<String>,
    clock: Option<Arc<dyn calendar::Clock>>,
) -> Result<(), String> {
    platform::app::serve(settings, select(names)?, bind, clock).await
}

/// `--clock` / `--speed`: a moving clock from a chosen Tyumen time, for the
/// embedded mode only: a production deployment's day close and payment dates
/// run on real time, and a shared database must never see invented times.
fn moving_clock(
    settings: &settings::Settings,
    at: &str,
    speed: u32,
) -> Result<Arc<dyn calendar::Clock>, String> {
    if settings.is_distributed() {
        return Err(
            "--clock: a settable clock is for the embedded mode only; this configuration \
             uses PostgreSQL or RabbitMQ"
                .into(),
        );
    }
    let local = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(at, f).ok())
        .ok_or_else(|| {
            format!("--clock: {at:?} is not a Tyumen time YYYY-MM-DDTHH:MM (e.g. 2026-05-12T10:00)")
        })?;
    Ok(Arc::new(calendar::MovingClock::new(
        calendar::local_to_utc(local),
        speed,
    )))
}

fn secrets(settings: &settings::Settings, command: SecretsCommand) -> Result<(), String> {
    use platform::secrets;
    match command {
        SecretsCommand::Init => {
            let path = secrets::key_file(settings);
            if path.exists() {
                println!("{} exists; nothing changed", path.display());
                return Ok(());
            }
            let id = secrets::add_key(settings).map_err(|e| e.to_string())?;
            println!("{}: key {id} created", path.display());
            Ok(())
        }
        SecretsCommand::Rotate { retire_old } => {
            if retire_old && !settings.secrets.keys.is_empty() {
                return Err(
                    "--retire-old: the keys come from the configuration; remove the old ones there"
                        .into(),
                );
            }
            if settings.secrets.keys.is_empty() {
                let id = secrets::add_key(settings).map_err(|e| e.to_string())?;
                println!("new key {id} is current");
            }
            let keys = secrets::Keyring::load(settings).map_err(|e| e.to_string())?;
            for service in portal::services() {
                let db = migrated_db(settings, service.as_ref())?;
                let n = service
                    .reseal_secrets(&db, &keys)
                    .map_err(|e| format!("{}: {e}", service.name()))?;
                println!(
                    "{}: {n} secrets sealed again with key {}",
                    service.name(),
                    keys.current()
                );
            }
            if retire_old {
                let retired = secrets::retire_old_keys(settings).map_err(|e| e.to_string())?;
                println!("retired keys: {}", retired.join(", "));
            }
            Ok(())
        }
    }
}

/// A service's database as configured, its migrations applied.
fn migrated_db(
    settings: &settings::Settings,
    service: &dyn platform::Service,
) -> Result<storage::Db, String> {
    let db = platform::app::open_db(settings, service.name()).map_err(|e| e.to_string())?;
    db.migrate(&platform::app::migration_sets(service))
        .map_err(|e| e.to_string())?;
    Ok(db)
}

fn migrate(settings: &settings::Settings, names: &[String]) -> Result<(), String> {
    for service in select(names)? {
        migrated_db(settings, service.as_ref())?;
        println!("{}: migrations applied", service.name());
    }
    Ok(())
}

fn token(settings: &settings::Settings, args: TokenArgs) -> Result<(), String> {
    let roles = args
        .roles
        .iter()
        .map(|r| {
            r.parse::<auth::Role>()
                .map_err(|e| format!("--role {r}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let dir = settings.storage.data_dir.join("keys");
    let signer = auth::LocalSigner::load_or_create(&dir).map_err(|e| e.to_string())?;
    let mut request = auth::MintRequest::new(&args.subject, roles);
    request.name = args.name;
    request.schools = args.schools;
    request.classes = args.classes;
    request.organizers = args.organizers;
    request.municipalities = args.municipalities;
    request.banks = args.banks;
    request.children = args.children;
    request.participant = args.participant;
    request.ttl = chrono::Duration::hours(args.ttl_hours);
    if !settings.auth.issuer.is_empty() {
        request.issuer = settings.auth.issuer.clone();
    }
    if !settings.auth.audience.is_empty() {
        request.audience = Some(settings.auth.audience.clone());
    }
    println!("{}", signer.mint(&request).map_err(|e| e.to_string())?);
    Ok(())
}

fn dlq(settings: &settings::Settings, command: DlqCommand) -> Result<(), String> {
    match command {
        DlqCommand::List {
            services,
            all,
            json,
        } => {
            let mut rows = Vec::new();
            for service in select(&services)? {
                let db =
                    platform::app::open_db(settings, service.name()).map_err(|e| e.to_string())?;
                let mut conn = db.conn().map_err(|e| e.to_string())?;
                let letters = match bus::store::list_dead_letters(&mut conn, all) {
                    Ok(letters) => letters,
                    // Listing every service: one not set up on this database (never
                    // migrated here) has no dead letters; say so and go on.
                    Err(e) if services.is_empty() => {
                        eprintln!("{}: no tables here ({e}); skipped", service.name());
                        continue;
                    }
                    Err(e) => return Err(e.to_string()),
                };
                for letter in letters {
                    rows.push((service.name(), letter));
                }
            }
            if json {
                let list: Vec<_> = rows
                    .iter()
                    .map(|(s, l)| serde_json::json!({ "service": s, "letter": l }))
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&list).map_err(|e| e.to_string())?
                );
                return Ok(());
            }
            if rows.is_empty() {
                println!("no dead letters");
                return Ok(());
            }
            println!(
                "{:<10} {:>6}  {:<20} {:<32} {:>8}  {:<19}  error",
                "service", "id", "consumer", "kind", "attempts", "dead at (UTC)"
            );
            for (service, l) in rows {
                println!(
                    "{:<10} {:>6}  {:<20} {:<32} {:>8}  {:<19}  {}{}",
                    service,
                    l.id,
                    l.consumer,
                    l.kind,
                    l.attempts,
                    l.dead_at.format("%Y-%m-%d %H:%M:%S"),
                    l.error,
                    if l.replayed_at.is_some() {
                        " (replayed)"
                    } else {
                        ""
                    }
                );
            }
            Ok(())
        }
        DlqCommand::Replay { service, ids, all } => {
            let service = select(std::slice::from_ref(&service))?.remove(0);
            let db = platform::app::open_db(settings, service.name()).map_err(|e| e.to_string())?;
            let mut conn = db.conn().map_err(|e| e.to_string())?;
            let ids = if all {
                bus::store::list_dead_letters(&mut conn, false)
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(|l| l.id)
                    .collect()
            } else if ids.is_empty() {
                return Err("name the dead letters to replay, or pass --all".into());
            } else {
                ids
            };
            for id in ids {
                use diesel::Connection;
                let replayed = conn
                    .transaction(|c| bus::store::replay_dead_letter(c, id))
                    .map_err(|e| e.to_string())?;
                match replayed {
                    Some(l) => println!(
                        "{id}: {} put back on {} (the running service's relay sends it)",
                        l.kind, l.queue
                    ),
                    None => println!("{id}: no such open dead letter"),
                }
            }
            Ok(())
        }
    }
}

fn registry(settings: &settings::Settings, command: RegistryCommand) -> Result<(), String> {
    use std::sync::atomic::Ordering;
    let RegistryCommand::Import {
        file,
        bank,
        date,
        format,
    } = command;
    let format = match format
        .as_deref()
        .or_else(|| file.extension().and_then(|e| e.to_str()))
    {
        Some(f) if f.eq_ignore_ascii_case("xml") => payments::registry::Format::Xml,
        Some(f) if f.eq_ignore_ascii_case("csv") || f.eq_ignore_ascii_case("txt") => {
            payments::registry::Format::Csv
        }
        other => {
            return Err(format!(
                "--format: csv or xml, got {}",
                other.unwrap_or("nothing")
            ))
        }
    };
    let size = std::fs::metadata(&file)
        .map_err(|e| format!("{}: {e}", file.display()))?
        .len();
    let db = migrated_db(settings, &payments::PaymentsService)?;
    let request = payments::registry::ImportRequest {
        format,
        bank,
        date,
        file_name: file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        uploaded_by: format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "operator".into())
        ),
    };
    let progress = std::sync::Arc::new(payments::registry::Progress::default());
    let bar = indicatif::ProgressBar::new(size * 2);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:12} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .map_err(|e| e.to_string())?
        .progress_chars("=> "),
    );
    let watcher = {
        let (progress, bar) = (progress.clone(), bar.clone());
        std::thread::spawn(move || loop {
            let pass = progress.pass();
            let done = progress.bytes.load(Ordering::Relaxed);
            bar.set_message(pass.label());
            bar.set_position(if pass <= payments::registry::Pass::Checking {
                done
            } else {
                size + done
            });
            if bar.is_finished() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        })
    };
    let result = payments::registry::import(&db, chrono::Utc::now(), &file, &request, &progress);
    bar.finish_and_clear();
    let _ = watcher.join();
    let imported = result.map_err(|e| e.to_string())?;
    let r = &imported.registry;
    if imported.already_imported {
        println!(
            "this registry was imported before ({}); nothing changed",
            r.id
        );
    }
    println!(
        "registry {} of bank {} for {}: {} lines, {}",
        r.id,
        r.bank,
        r.registry_date,
        r.lines_total,
        primitives::Money::from_kopecks(r.amount_total_kopecks)
    );
    for (outcome, n) in r.outcome_counts() {
        println!("  {outcome:<22} {n}");
    }
    Ok(())
}
