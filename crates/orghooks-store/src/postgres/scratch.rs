//! Throwaway databases for tests: each test gets its own database on the
//! server, created empty and dropped when the guard goes, so runs never
//! interfere.

use tokio_postgres::NoTls;
use uuid::Uuid;

/// The server tests use: `ORGHOOKS_TEST_DATABASE_URL`, else the local one.
pub fn admin_url() -> String {
    std::env::var("ORGHOOKS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database that exists until this is dropped.
#[derive(Debug)]
pub struct ScratchDatabase {
    /// The URL to connect to it.
    pub url: String,
    name: String,
    admin: String,
}

/// `url` with its database name replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{host_part}/{db}{query}")
}

impl ScratchDatabase {
    /// Creates a fresh, empty database; panics with the reason when the
    /// server cannot be reached (tests must not skip silently).
    pub async fn create() -> Self {
        Self::create_on(&admin_url()).await
    }

    /// Creates a fresh, empty database on the server of `admin` (a URL).
    pub async fn create_on(admin: &str) -> Self {
        let admin = admin.to_owned();
        let (client, connection) =
            tokio_postgres::connect(&admin, NoTls)
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL tests need a server: cannot connect to {admin} ({e}). \
                 Set ORGHOOKS_TEST_DATABASE_URL or run the README's test command, which starts one."
                    )
                });
        tokio::spawn(connection);
        let name = format!("orghooks_t_{}", Uuid::new_v4().simple());
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("CREATE DATABASE");
        Self {
            url: with_database(&admin, &name),
            name,
            admin,
        }
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs outside async: use a short-lived runtime of our own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async {
                if let Ok((client, connection)) = tokio_postgres::connect(&admin, NoTls).await {
                    tokio::spawn(connection);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
