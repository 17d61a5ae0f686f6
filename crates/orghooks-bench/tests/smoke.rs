//! The benchmark tool works: a seconds-long run of every scenario with tiny
//! counts, on loopback, delivers everything and writes its results.

use std::process::Command;

#[test]
fn a_smoke_run_of_every_scenario_delivers_everything() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_orghooks-bench"))
        .args(["--smoke", "--out"])
        .arg(out.path())
        .env_remove("RUST_LOG")
        .status()
        .expect("orghooks-bench runs");
    assert!(status.success(), "the smoke run failed");
    let summary = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
    for scenario in [
        "baseline",
        "saturate-1",
        "saturate-5",
        "batch",
        "steady-600",
        "steady-1k",
        "steady-10k",
        "one-dead",
        "many-orgs",
        "overload",
    ] {
        assert!(
            summary.contains(&format!("| {scenario} |")),
            "{scenario} missing:\n{summary}"
        );
        assert!(out.path().join(format!("{scenario}.json")).exists());
    }
    assert!(!summary.contains("| NO |"), "{summary}");
}

/// The PostgreSQL-only scenarios too: `handoff` runs an api node and a
/// worker node on one database.
#[test]
fn a_smoke_run_on_postgres_delivers_everything() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_orghooks-bench"))
        .args(["--smoke", "--scenarios", "saturate-1,steady-600,handoff"])
        .arg("--postgres")
        .arg(orghooks_store::postgres::scratch::admin_url())
        .arg("--out")
        .arg(out.path())
        .env_remove("RUST_LOG")
        .status()
        .expect("orghooks-bench runs");
    assert!(status.success(), "the smoke run failed");
    let summary = std::fs::read_to_string(out.path().join("summary-pg.md")).unwrap();
    for scenario in ["saturate-1", "steady-600", "handoff"] {
        assert!(
            summary.contains(&format!("| {scenario} |")),
            "{scenario} missing:\n{summary}"
        );
        assert!(out.path().join(format!("{scenario}-pg.json")).exists());
    }
    assert!(summary.contains("postgres (api + worker)"), "{summary}");
    assert!(!summary.contains("| NO |"), "{summary}");
}
