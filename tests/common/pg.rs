//! A fresh PostgreSQL database per test, on the machine's server (127.0.0.1:5432, trust auth,
//! user `postgres`), dropped afterwards. Without a reachable server the test prints that it
//! was skipped, unless `OMS_REQUIRE_POSTGRES=1` (CI), where it fails.

use std::sync::atomic::{AtomicU64, Ordering};
use tokio_postgres::{Client, NoTls};

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub struct TestDb {
    pub name: String,
    pub url: String,
}

/// Connects to `url`, driving the connection on a task.
pub async fn client(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
}

impl TestDb {
    /// A new empty database, or `None` (with a note) when PostgreSQL is unreachable.
    pub async fn create(test: &str) -> Option<TestDb> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let admin = match tokio_postgres::connect(ADMIN_URL, NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                client
            }
            Err(e) => {
                if std::env::var("OMS_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                    panic!("PostgreSQL is required (OMS_REQUIRE_POSTGRES=1) but unreachable at {ADMIN_URL}: {e}");
                }
                eprintln!("{test}: skipped: PostgreSQL is unreachable at {ADMIN_URL} ({e})");
                return None;
            }
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "oms_test_{}_{}_{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            nanos
        );
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        Some(TestDb { name, url })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside a runtime: drop the database from a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((client, connection)) = tokio_postgres::connect(ADMIN_URL, NoTls).await {
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
