//! Authentication against a real registry with htpasswd Basic auth:
//! missing and wrong credentials give clear errors, `kiln login` checks
//! and saves credentials in docker's config.json, `kiln logout` removes
//! them, and credentials docker wrote are used as they are.

mod registry_common;

use std::process::Stdio;

use registry_common::{Kiln, assert_empty_store, kiln, two_layer_image};
use testkit::ArchiveStyle;
use testkit::cli::run_with_stdin;
use testkit::registry::TestRegistry;

fn login(k: &Kiln, host: &str, user: &str, password: &str) -> std::process::Output {
    run_with_stdin(
        &mut k.cmd(&["login", "-u", user, "--password-stdin", host]),
        format!("{password}\n").as_bytes(),
    )
}

fn config_json(k: &Kiln) -> Option<serde_json::Value> {
    let bytes = std::fs::read(k.docker_config.join("config.json")).ok()?;
    Some(serde_json::from_slice(&bytes).unwrap())
}

#[test]
fn login_push_pull_logout() {
    let reg = TestRegistry::start_with_auth("alice", "wonderland");
    let host = reg.host();
    let a = kiln();
    a.load(&[two_layer_image("app:1")], ArchiveStyle::Docker25);
    let target = format!("{host}/private/app:1");

    // No credentials: refused, with what to do about it.
    let err = a.fails(&["push", "app:1", &target]);
    assert!(
        err.contains(&format!(
            "error: push {host}/private/app:1: unauthorized: authentication required: \
             no credentials for {host} (run `kiln login {host}`)"
        )),
        "{err}"
    );
    let err = a.fails(&["pull", &target]);
    assert!(
        err.contains("unauthorized") && err.contains("kiln login"),
        "{err}"
    );

    // A wrong password: login fails and saves nothing.
    let out = login(&a, host, "alice", "wrong");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "error: login to {host} failed: unauthorized: authentication required: \
             the registry refused the credentials of user \"alice\""
        )),
        "{err}"
    );
    assert!(
        config_json(&a).is_none(),
        "nothing saved after a failed login"
    );

    // The right one: saved in docker's format, mode 0600.
    let out = login(&a, host, "alice", "wonderland");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("Login Succeeded"), "{err}");
    let cfg = config_json(&a).unwrap();
    let auth = cfg["auths"][host]["auth"].as_str().unwrap();
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .unwrap();
    assert_eq!(decoded, b"alice:wonderland");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(a.docker_config.join("config.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Push and pull now work (a second state dir shares the config).
    a.ok(&["push", "app:1", &target]);
    let b = a.sibling("b");
    b.ok(&["pull", &target]);
    assert_eq!(b.id(&target), a.id("app:1"));

    // Logout removes them; pulls are refused again.
    let (_, err) = a.ok_with_stderr(&["logout", host]);
    assert!(
        err.contains(&format!("Removing login credentials for {host}")),
        "{err}"
    );
    let cfg = config_json(&a).unwrap();
    assert!(cfg["auths"].get(host).is_none(), "{cfg}");
    let (_, err) = a.ok_with_stderr(&["logout", host]);
    assert!(err.contains(&format!("Not logged in to {host}")), "{err}");
    let c = a.sibling("c");
    let err = c.fails(&["pull", &target]);
    assert!(err.contains("no credentials"), "{err}");
    assert_empty_store(&c);
}

#[test]
fn credentials_written_by_docker_are_used() {
    let reg = TestRegistry::start_with_auth("bob", "builder");
    let host = reg.host();
    let a = kiln();
    std::fs::create_dir_all(&a.docker_config).unwrap();
    // As `docker login http://HOST` writes it: a URL key, base64 user:password.
    std::fs::write(
        a.docker_config.join("config.json"),
        format!(r#"{{"auths":{{"http://{host}":{{"auth":"Ym9iOmJ1aWxkZXI="}}}},"detachKeys":"ctrl-e,e"}}"#),
    )
    .unwrap();
    a.load(&[two_layer_image("app:1")], ArchiveStyle::Docker25);
    a.ok(&["push", "app:1", &format!("{host}/bob/app:1")]);

    // A stale password there: the registry's refusal is reported as such.
    std::fs::write(
        a.docker_config.join("config.json"),
        // base64("bob:stale")
        format!(r#"{{"auths":{{"{host}":{{"auth":"Ym9iOnN0YWxl"}}}}}}"#),
    )
    .unwrap();
    let b = a.sibling("b");
    let err = b.fails(&["pull", &format!("{host}/bob/app:1")]);
    assert!(
        err.contains("unauthorized") && err.contains("refused the credentials of user \"bob\""),
        "{err}"
    );
    assert_empty_store(&b);
}

#[test]
fn login_needs_a_user_and_password() {
    let reg = TestRegistry::start_with_auth("u", "p");
    let a = kiln();
    let out = a
        .cmd(&["login", reg.host()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a user name is needed (-u USER)"), "{err}");
    let out = login(&a, reg.host(), "u", "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the password is empty"), "{err}");
    // -p works but warns.
    let (_, err) = a.ok_with_stderr(&["login", "-u", "u", "-p", "p", reg.host()]);
    assert!(
        err.contains("WARNING! Using --password via the CLI is insecure"),
        "{err}"
    );
}

#[test]
fn bearer_tokens_from_the_challenge_realm() {
    // An open registry behind testkit's token gateway, which behaves as
    // Docker Hub does: 401 + `Bearer realm=…,service=…,scope=…`, tokens
    // from the realm for Basic credentials, checked per repository scope.
    let reg = TestRegistry::start();
    let gw = testkit::registry::FaultProxy::start_with_token_auth(reg.host(), "carol", "s3cret");
    let host = gw.host();
    let a = kiln();
    a.load(&[two_layer_image("app:1")], ArchiveStyle::Docker25);
    let target = format!("{host}/team/app:1");
    let err = a.fails(&["push", "app:1", &target]);
    assert!(
        err.contains(&format!(
            "the token server http://{host}/token refused anonymous access"
        )) && err.contains(&format!("run `kiln login {host}`")),
        "{err}"
    );

    let out = login(&a, host, "carol", "nope");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!(
            "login to {host} failed: unauthorized: the token server http://{host}/token refused user \"carol\""
        )),
        "{err}"
    );
    assert!(config_json(&a).is_none());
    let out = login(&a, host, "carol", "s3cret");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    a.ok(&["push", "app:1", &target]);
    let b = a.sibling("b");
    b.ok(&["pull", &target]);
    assert_eq!(b.id(&target), a.id("app:1"));
    let log = gw.log();
    let tokens: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("account=carol&scope="))
        .collect();
    // One token for the push (pull,push), one for the pull (pull only):
    // not one per request or per parallel transfer.
    assert_eq!(tokens.len(), 2, "{log:#?}");
    assert!(
        tokens[0].contains("scope=repository%3Ateam%2Fapp%3Apull%2Cpush"),
        "{log:#?}"
    );
    assert!(
        tokens[1].ends_with("scope=repository%3Ateam%2Fapp%3Apull -> token"),
        "{log:#?}"
    );
}
