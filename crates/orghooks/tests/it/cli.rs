//! The operator's view: serve with no configuration, admin commands while
//! the server runs, and their effect on it.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::process::{access_token, admin_json, run, serve};

async fn get(client: &reqwest::Client, url: &str, token: &str) -> (u16, Value) {
    let resp = client.get(url).bearer_auth(token).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn serve_with_no_configuration_runs_on_sqlite_in_dot_data() {
    let cwd = tempfile::tempdir().unwrap();
    let server = serve(cwd.path(), &[]);
    let resp = reqwest::get(format!("{}/health/ready", server.base))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(cwd.path().join("data/orghooks.db").exists());
    assert!(cwd.path().join("data/keys").exists());
    let started = server.logged("orghooks listening").unwrap();
    assert_eq!(started["role"], "All");
    let storage = started["storage"].as_str().unwrap();
    assert!(
        storage.starts_with("SQLite /") && storage.ends_with("data/orghooks.db"),
        "{storage}"
    );
    // A second serve on the same folder is refused with a clear message.
    let second = run(cwd.path(), &["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(second.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another `orghooks serve` is already using the data folder"),
        "{stderr}"
    );
}

#[tokio::test]
async fn admin_changes_reach_the_running_server_within_a_second() {
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path();
    let server = serve(dir, &[]);
    let org = admin_json(dir, &["org", "create", "--name", "Acme Lending"]);
    let org_uuid = org["org"]["uuid"].as_str().unwrap().to_owned();
    assert_eq!(org["org"]["name"], "Acme Lending");
    let created = admin_json(
        dir,
        &[
            "account", "create", "--org", &org_uuid, "--role", "manager", "--name", "ops",
        ],
    );
    let account = &created["account"];
    assert_eq!(account["role"], "manager");
    assert_eq!(account["disabled"], false);
    assert!(account["client_secret"].as_str().unwrap().len() >= 32);

    let listed = admin_json(dir, &["account", "list", "--org", &org_uuid]);
    assert_eq!(listed["accounts"].as_array().unwrap().len(), 1);
    assert!(
        listed["accounts"][0].get("client_secret").is_none(),
        "shown once only"
    );
    let orgs = admin_json(dir, &["org", "list"]);
    assert_eq!(orgs["orgs"][0]["uuid"], org_uuid.as_str());

    let client = reqwest::Client::new();
    let token = &access_token(&server.base, account).await;
    let hooks = format!("{}/v1/account/settings/webhooks", server.base);
    assert_eq!(get(&client, &hooks, token).await.0, 200);

    let account_uuid = account["uuid"].as_str().unwrap();
    let disabled = admin_json(dir, &["account", "disable", account_uuid]);
    assert_eq!(disabled["account"]["disabled"], true);
    let changed = Instant::now();
    let deadline = changed + Duration::from_secs(1);
    let refused = loop {
        let (status, body) = get(&client, &hooks, token).await;
        if status == 401 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "still {status} one second after the CLI disabled the account"
        );
        tokio::task::yield_now().await;
    };
    assert_eq!(refused["code"], 1307);

    admin_json(dir, &["account", "enable", account_uuid]);
    assert_eq!(get(&client, &hooks, token).await.0, 200);
}

#[test]
fn admin_errors_are_clear() {
    let cwd = tempfile::tempdir().unwrap();
    assert!(run(cwd.path(), &["migrate"]).status.success());
    let missing = uuid::Uuid::new_v4().to_string();
    let out = run(
        cwd.path(),
        &[
            "admin", "account", "create", "--org", &missing, "--role", "manager",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("--org: no organization {missing}")),
        "{stderr}"
    );
    std::fs::write(
        cwd.path().join("bad.toml"),
        "[http]\nlisten = \"nowhere\"\n",
    )
    .unwrap();
    let out = run(
        cwd.path(),
        &["--config", "bad.toml", "admin", "org", "list"],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("listen"), "{stderr}");
    let out = run(cwd.path(), &["admin", "org", "create"]);
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn publisher_tokens_are_shown_once_and_revocable() {
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path();
    let missing = run(dir, &["admin", "org", "list"]);
    assert!(!missing.status.success());
    let said = String::from_utf8_lossy(&missing.stderr);
    assert!(
        said.contains("no orghooks database in") && said.contains("orghooks.db"),
        "{said}"
    );
    assert!(!dir.join("data").exists(), "no empty database made");
    assert!(run(dir, &["migrate"]).status.success());
    let created = admin_json(dir, &["publisher-token", "create", "--name", "pipeline"]);
    let token = &created["publisher_token"];
    assert!(token["token"].as_str().unwrap().starts_with("ohp_"));
    assert_eq!(token["name"], "pipeline");
    assert_eq!(token["revoked"], false);
    let listed = admin_json(dir, &["publisher-token", "list"]);
    let first = &listed["publisher_tokens"][0];
    assert_eq!(first["uuid"], token["uuid"]);
    assert!(first.get("token").is_none(), "the token is shown once only");
    let revoked = admin_json(
        dir,
        &["publisher-token", "revoke", token["uuid"].as_str().unwrap()],
    );
    assert_eq!(revoked["publisher_token"]["revoked"], true);
    // Or by the token itself, as the platform holds it.
    let other = admin_json(dir, &["publisher-token", "create", "--name", "other"]);
    let revoked = admin_json(
        dir,
        &[
            "publisher-token",
            "revoke",
            other["publisher_token"]["token"].as_str().unwrap(),
        ],
    );
    assert_eq!(
        revoked["publisher_token"]["uuid"],
        other["publisher_token"]["uuid"]
    );
    assert_eq!(revoked["publisher_token"]["revoked"], true);
}

#[test]
fn config_errors_name_the_key_and_where_it_was_set_once() {
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path();
    let file = dir.join("orghooks.toml");
    let said = |toml: &str, env: &[(&str, &str)]| {
        std::fs::write(&file, toml).unwrap();
        let out = crate::process::run_with_env(
            dir,
            &["--config", file.to_str().unwrap(), "migrate"],
            env,
        );
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = said("[webhooks]\nmax_per_orgs = 3\n", &[]);
    assert!(!ok);
    assert_eq!(err.matches("webhooks.max_per_orgs").count(), 1, "{err}");
    assert!(err.contains(&format!("(in {})", file.display())), "{err}");
    let (ok, err) = said("[log]\nlevel = \"loud\"\n", &[]);
    assert!(!ok);
    assert_eq!(err.matches("log.level").count(), 1, "{err}");
    assert!(err.contains("\"loud\" is not a level"), "{err}");
    assert!(err.contains(file.to_str().unwrap()), "{err}");
    let (ok, err) = said(
        "",
        &[("ORGHOOKS_SECURITY__ALLOW_CIDRS", "10.0.0.0/8, nope")],
    );
    assert!(!ok);
    assert!(
        err.contains("security.allow_cidrs (in `ORGHOOKS_` environment variable(s)): \"nope\""),
        "{err}"
    );
    let (ok, err) = said(
        "",
        &[("ORGHOOKS_SECURITY__ALLOW_CIDRS", "127.0.0.0/8, ::1")],
    );
    assert!(ok, "a comma-separated string is a list: {err}");
}
