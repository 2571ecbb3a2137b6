//! Secrets at rest (an acquiring merchant's password, a callback secret):
//! sealed with AES-256-GCM before they reach a table, opened only where they
//! are used, never logged or answered.
//!
//! A sealed value is text, `sealed:v1:<key id>:<base64 of nonce ‖ ciphertext>`,
//! so every row names the key that sealed it and keys can be rotated: the
//! newest key (`current`) seals, every key of the ring opens, and `portal
//! secrets rotate` seals every row again under the current key. The row's own
//! identity is the AEAD's associated data, so a sealed value copied into
//! another row (or column) does not open there.
//!
//! The keys come from the configuration (`secrets.keys`, id → base64 of 32
//! bytes, with `secrets.current`); without any, from a key file
//! (`secrets.key_file`, by default `<data_dir>/keys/secrets.toml`), which the
//! embedded mode creates on first start. With PostgreSQL the keys must be
//! configured or the file present: replicas that each invented a key would
//! not open one another's rows.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

const PREFIX: &str = "sealed:v1:";

/// The keys that seal and open secrets at rest.
pub struct Keyring {
    current: String,
    keys: BTreeMap<String, LessSafeKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Key ids only, never key material.
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("secret sealed with key `{0}`, which is not in the key ring")]
    UnknownKey(String),
    #[error("secret does not open: altered, moved from another row, or sealed with another key of the same id")]
    DoesNotOpen,
    #[error("secrets: {0}")]
    Config(String),
}

/// The key file: `current = "k…"` and `[keys]` id = base64 of 32 bytes.
#[derive(Debug, Serialize, Deserialize)]
struct KeyFile {
    current: String,
    keys: BTreeMap<String, String>,
}

impl Keyring {
    /// A ring of `keys` (id → 32 bytes) sealing with `current`.
    pub fn new(current: &str, keys: &BTreeMap<String, Vec<u8>>) -> Result<Keyring, SecretError> {
        let mut ring = BTreeMap::new();
        for (id, bytes) in keys {
            if !valid_id(id) {
                return Err(SecretError::Config(format!(
                    "key id `{id}`: 1–32 latin letters, digits, '-' or '_'"
                )));
            }
            let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| {
                SecretError::Config(format!("key `{id}` must be 32 bytes (base64 of 32 bytes)"))
            })?;
            ring.insert(id.clone(), LessSafeKey::new(unbound));
        }
        if !ring.contains_key(current) {
            return Err(SecretError::Config(format!(
                "the current key `{current}` is not among the keys"
            )));
        }
        Ok(Keyring {
            current: current.to_string(),
            keys: ring,
        })
    }

    /// The ring of the configuration: `secrets.keys` if any, else the key
    /// file, created with a fresh key where `may_create` (SQLite: one process
    /// owns the data).
    pub fn load(settings: &settings::Settings) -> Result<Keyring, SecretError> {
        let s = &settings.secrets;
        if !s.keys.is_empty() {
            return Keyring::new(&s.current, &decode_keys(&s.keys)?);
        }
        let path = key_file(settings);
        if !path.exists() {
            if !settings.storage.database_url.is_empty() {
                return Err(SecretError::Config(format!(
                    "no keys: set `secrets.keys` and `secrets.current`, or provide the key file {} \
                     (the same on every replica)",
                    path.display()
                )));
            }
            create_key_file(&path)?;
        }
        Keyring::from_file(&path)
    }

    fn from_file(path: &Path) -> Result<Keyring, SecretError> {
        let file = read_key_file(path)?;
        Keyring::new(&file.current, &decode_keys(&file.keys)?)
    }

    /// The id of the key that seals.
    pub fn current(&self) -> &str {
        &self.current
    }

    /// Seals `plain` for the row named by `context` (e.g.
    /// `acquiring_organizers.merchant_password:org-1`).
    pub fn seal(&self, plain: &str, context: &str) -> Result<String, SecretError> {
        let key = &self.keys[&self.current];
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SecretError::Config("no system randomness".into()))?;
        let mut data = plain.as_bytes().to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context.as_bytes()),
            &mut data,
        )
        .map_err(|_| SecretError::DoesNotOpen)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(format!("{PREFIX}{}:{}", self.current, B64.encode(out)))
    }

    /// Opens a value [`Keyring::seal`]ed for `context`. A value stored before
    /// secrets were sealed (no `sealed:` prefix) is returned as it is, until
    /// `portal secrets rotate` seals it.
    pub fn open(&self, stored: &str, context: &str) -> Result<String, SecretError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let (id, body) = rest.split_once(':').ok_or(SecretError::DoesNotOpen)?;
        let key = self
            .keys
            .get(id)
            .ok_or_else(|| SecretError::UnknownKey(id.to_string()))?;
        let bytes = B64.decode(body).map_err(|_| SecretError::DoesNotOpen)?;
        if bytes.len() < NONCE_LEN {
            return Err(SecretError::DoesNotOpen);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::DoesNotOpen)?;
        let mut sealed = sealed.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut sealed)
            .map_err(|_| SecretError::DoesNotOpen)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SecretError::DoesNotOpen)
    }

    /// Whether `stored` is sealed with the current key (nothing to rotate).
    pub fn is_current(&self, stored: &str) -> bool {
        stored
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once(':'))
            .is_some_and(|(id, _)| id == self.current)
    }
}

/// The key file of `settings`.
pub fn key_file(settings: &settings::Settings) -> PathBuf {
    if settings.secrets.key_file.as_os_str().is_empty() {
        settings.storage.data_dir.join("keys").join("secrets.toml")
    } else {
        settings.secrets.key_file.clone()
    }
}

/// Adds a fresh key to the key file and makes it the current one (creates
/// the file with it if there is none); the old keys stay, so rows sealed with them still open until they are sealed again.
/// Returns the new key's id. Refused when the keys come from the configuration:
/// there the operator adds the key and names it `current`.
pub fn add_key(settings: &settings::Settings) -> Result<String, SecretError> {
    if !settings.secrets.keys.is_empty() {
        return Err(SecretError::Config(
            "the keys come from the configuration (`secrets.keys`): add the new key there, \
             name it in `secrets.current`, then run `portal secrets rotate`"
                .into(),
        ));
    }
    let path = key_file(settings);
    if !path.exists() {
        return create_key_file(&path);
    }
    let mut file = read_key_file(&path)?;
    let id = new_key_id(&file.keys);
    file.keys.insert(id.clone(), B64.encode(fresh_key()?));
    file.current = id.clone();
    write_key_file(&path, &file)?;
    Ok(id)
}

/// Removes every key but the current one from the key file (after a rotation
/// sealed every row with it).
pub fn retire_old_keys(settings: &settings::Settings) -> Result<Vec<String>, SecretError> {
    let path = key_file(settings);
    let mut file = read_key_file(&path)?;
    let current = file.current.clone();
    let retired: Vec<String> = file
        .keys
        .keys()
        .filter(|k| **k != current)
        .cloned()
        .collect();
    file.keys.retain(|k, _| *k == current);
    write_key_file(&path, &file)?;
    Ok(retired)
}

fn valid_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Key id → base64 text, as configured or in the key file, decoded.
fn decode_keys(texts: &BTreeMap<String, String>) -> Result<BTreeMap<String, Vec<u8>>, SecretError> {
    texts
        .iter()
        .map(|(id, text)| {
            let text = text.trim();
            B64.decode(text.trim_end_matches('='))
                .or_else(|_| base64::engine::general_purpose::STANDARD.decode(text))
                .map(|key| (id.clone(), key))
                .map_err(|_| SecretError::Config(format!("key `{id}` is not base64")))
        })
        .collect()
}

fn read_key_file(path: &Path) -> Result<KeyFile, SecretError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SecretError::Config(format!("cannot read {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| SecretError::Config(format!("{}: {e}", path.display())))
}

fn fresh_key() -> Result<[u8; 32], SecretError> {
    let mut key = [0u8; 32];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| SecretError::Config("no system randomness".into()))?;
    Ok(key)
}

fn new_key_id(existing: &BTreeMap<String, String>) -> String {
    let base = format!("k{}", chrono::Utc::now().format("%Y%m%d"));
    let mut id = base.clone();
    let mut n = 2;
    while existing.contains_key(&id) {
        id = format!("{base}-{n}");
        n += 1;
    }
    id
}

/// A key file with one fresh key; returns its id.
fn create_key_file(path: &Path) -> Result<String, SecretError> {
    let id = new_key_id(&BTreeMap::new());
    let file = KeyFile {
        current: id.clone(),
        keys: BTreeMap::from([(id.clone(), B64.encode(fresh_key()?))]),
    };
    write_key_file(path, &file)?;
    Ok(id)
}

fn write_key_file(path: &Path, file: &KeyFile) -> Result<(), SecretError> {
    let io =
        |e: std::io::Error| SecretError::Config(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let text = format!(
        "# Keys sealing secrets at rest (AES-256-GCM). Keep this file private and backed up:\n\
         # without it the sealed secrets cannot be read. `current` seals; every key opens.\n{}",
        toml::to_string(file).map_err(|e| SecretError::Config(e.to_string()))?
    );
    // Written beside, then renamed, readable by the owner only.
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ring(current: &str, ids: &[&str]) -> Keyring {
        let keys = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.to_string(), vec![i as u8 + 1; 32]))
            .collect();
        Keyring::new(current, &keys).unwrap()
    }

    #[test]
    fn a_sealed_secret_opens_only_in_its_own_row_and_names_its_key() {
        let keys = ring("k1", &["k1"]);
        let sealed = keys.seal("merchant-pass", "acq.password:org-1").unwrap();
        assert!(sealed.starts_with("sealed:v1:k1:"), "{sealed}");
        assert!(!sealed.contains("merchant-pass"));
        assert_eq!(
            keys.open(&sealed, "acq.password:org-1").unwrap(),
            "merchant-pass"
        );
        // Moved to another row, or altered: does not open.
        assert_eq!(
            keys.open(&sealed, "acq.password:org-2"),
            Err(SecretError::DoesNotOpen)
        );
        let mut altered = sealed.clone();
        let last = altered.pop().unwrap();
        altered.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(
            keys.open(&altered, "acq.password:org-1"),
            Err(SecretError::DoesNotOpen)
        );
        // Two seals of one secret differ (a fresh nonce each time).
        assert_ne!(
            sealed,
            keys.seal("merchant-pass", "acq.password:org-1").unwrap()
        );
        // A value from before sealing reads as it is.
        assert_eq!(keys.open("plain", "x").unwrap(), "plain");
        assert!(!keys.is_current("plain"));
        assert!(keys.is_current(&sealed));
    }

    #[test]
    fn after_a_rotation_old_rows_still_open_and_new_ones_use_the_new_key() {
        let old = ring("k1", &["k1"]);
        let sealed = old.seal("s3cret", "c").unwrap();
        let rotated = ring("k2", &["k1", "k2"]);
        assert_eq!(rotated.open(&sealed, "c").unwrap(), "s3cret");
        assert!(!rotated.is_current(&sealed));
        let again = rotated.seal("s3cret", "c").unwrap();
        assert!(again.starts_with("sealed:v1:k2:"));
        let only_new = ring("k2", &["k2"]);
        assert_eq!(
            only_new.open(&sealed, "c"),
            Err(SecretError::UnknownKey("k1".into()))
        );
        assert!(format!("{rotated:?}").contains("k2"));
    }

    #[test]
    fn bad_keys_are_refused_naming_them() {
        let short = BTreeMap::from([("k1".to_string(), vec![1u8; 16])]);
        assert!(
            matches!(Keyring::new("k1", &short), Err(SecretError::Config(m)) if m.contains("k1"))
        );
        let fine = BTreeMap::from([("k1".to_string(), vec![1u8; 32])]);
        assert!(
            matches!(Keyring::new("k9", &fine), Err(SecretError::Config(m)) if m.contains("k9"))
        );
    }
}
