//! Where the data is: the data folder of an embedded deployment (the SQLite
//! database, the lock that keeps a second `serve` out, the generated
//! encryption key), or the PostgreSQL database that nodes share.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use orghooks_core::sealing::Keyring;
use orghooks_store::Store;
use orghooks_store::postgres::{PgOptions, PgStore};
use orghooks_store::sqlite::{SqliteOptions, SqliteStore};

use crate::config::Config;

pub const DB_FILE: &str = "orghooks.db";
pub const LOCK_FILE: &str = "orghooks.lock";
pub const KEYS_FILE: &str = "keys";

/// Held by a running `serve`; the lock is released when dropped (or when
/// the process dies, however it dies).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

fn ensure_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data folder {}", dir.display()))
}

/// Takes the data folder's exclusive lock, or explains who holds it.
pub fn lock(dir: &Path) -> anyhow::Result<DirLock> {
    ensure_dir(dir)?;
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another `orghooks serve` is already using the data folder {} (it holds {}); \
             stop it, or give this one another --data-dir",
            dir.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    file.set_len(0)?;
    writeln!(file, "{}", std::process::id())?;
    Ok(DirLock { _file: file })
}

/// The keyring: the configured keys, else the data folder's key file,
/// generated on first use (readable by its owner only).
pub fn keyring(config: &Config) -> anyhow::Result<Keyring> {
    if !config.security.encryption_keys.is_empty() {
        return Keyring::from_specs(&config.security.encryption_keys)
            .context("security.encryption_keys");
    }
    let dir = &config.storage.data_dir;
    ensure_dir(dir)?;
    let path = dir.join(KEYS_FILE);
    if !path.exists() {
        write_new_key_file(&path)?;
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read key file {}", path.display()))?;
    let specs: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    Keyring::from_specs(&specs).with_context(|| format!("key file {}", path.display()))
}

fn write_new_key_file(path: &PathBuf) -> anyhow::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Ok(f) => f,
        // Another process (a concurrent admin command) created it first.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
    };
    writeln!(
        file,
        "# orghooks encryption keys: <id>:<base64 key>, the sealing key first. Keep this file secret and backed up."
    )?;
    writeln!(file, "{}", Keyring::generate_spec("k1"))?;
    file.sync_all()?;
    Ok(())
}

/// Opens the configured store: PostgreSQL when `storage.database_url` is
/// set (migrating it), else SQLite in the data folder.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    if config.storage.is_postgres() {
        let options = PgOptions {
            pool_size: config.storage.postgres_pool_size,
        };
        let store = PgStore::open(&config.storage.database_url, &options)
            .await
            .context("cannot open the PostgreSQL database (storage.database_url)")?;
        return Ok(Arc::new(store));
    }
    let dir = &config.storage.data_dir;
    ensure_dir(dir)?;
    let options = SqliteOptions {
        synchronous_full: config.storage.sqlite_synchronous_full,
        readers: config.storage.sqlite_readers,
        write_queue: config.storage.write_queue,
        ..SqliteOptions::default()
    };
    let path = dir.join(DB_FILE);
    let store = SqliteStore::open(&path, &options)
        .with_context(|| format!("cannot open the database {}", path.display()))?;
    Ok(Arc::new(store))
}
