//! docker-compose.yml cannot be started on these machines, so it is checked as
//! data: every service of the workspace has an entry that runs it, every
//! `PORTAL_…` variable it sets is a configuration key, and the distributed
//! profile loads.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use serde_yaml::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn compose() -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(repo().join("docker-compose.yml")).unwrap())
        .unwrap()
}

#[test]
fn every_service_has_a_compose_entry_that_runs_it() {
    let compose = compose();
    let entries = compose["services"].as_mapping().unwrap();
    for service in portal::services() {
        let name = service.name();
        let entry = entries
            .get(Value::from(name))
            .unwrap_or_else(|| panic!("docker-compose.yml has no service `{name}`"));
        let command: Vec<&str> = entry["command"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let pos = command.iter().position(|c| *c == "--service").unwrap();
        assert_eq!(command[pos + 1], name);
        assert!(
            entry["healthcheck"].is_mapping() || compose["x-service"]["healthcheck"].is_mapping()
        );
    }
    for infra in ["postgres", "rabbitmq", "otel-collector"] {
        assert!(entries.contains_key(Value::from(infra)), "{infra} missing");
    }
}

#[test]
fn compose_environment_names_exist_in_the_configuration() {
    let compose = compose();
    for (name, entry) in compose["services"].as_mapping().unwrap() {
        let Some(env) = entry["environment"].as_mapping() else {
            continue;
        };
        for key in env.keys() {
            let key = key.as_str().unwrap();
            if key.starts_with("PORTAL_") {
                assert!(
                    settings::is_known_env_key(key),
                    "service {name:?} sets unknown {key}"
                );
            }
        }
    }
}

#[test]
fn configuration_files_load() {
    let dir = repo().join("deploy/config");
    let base = settings::Settings::load_files(&[dir.join("portal.toml")]).unwrap();
    assert!(!base.is_distributed());
    let dist =
        settings::Settings::load_files(&[dir.join("portal.toml"), dir.join("distributed.toml")])
            .unwrap();
    assert!(dist.is_distributed());
    assert_eq!(dist.bus.backend, settings::BusBackend::Rabbitmq);
}
