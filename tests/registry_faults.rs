//! Faults between kiln and a real registry, injected by testkit's
//! loopback proxy: a 503 is retried, a reset mid-body resumes with a
//! Range request, a stall past the timeout is retried; a truncated body,
//! a wrong digest or a fault that does not go away fail with an error
//! naming the blob — and leave nothing in the store.

mod registry_common;

use std::time::Duration;

use registry_common::{Kiln, assert_empty_store, kiln, two_layer_image};
use testkit::registry::{Fault, FaultProxy, TestRegistry};
use testkit::{ArchiveStyle, FixtureImage, sha256};

/// A registry holding `app:1` (uncompressed layers, so blob digests are
/// the diffIDs the test knows), a proxy in front of it, the image.
fn setup() -> (TestRegistry, FaultProxy, FixtureImage) {
    let reg = TestRegistry::start();
    let proxy = FaultProxy::start(reg.host());
    let img = two_layer_image("app:1");
    let a = kiln();
    a.load(std::slice::from_ref(&img), ArchiveStyle::Docker25);
    a.ok(&[
        "push",
        "--compression",
        "uncompressed",
        "app:1",
        &format!("{}/app:1", reg.host()),
    ]);
    (reg, proxy, img)
}

fn big_layer(img: &FixtureImage) -> String {
    format!("/blobs/{}", sha256(&img.layers[0]))
}

/// Pulls `app:1` into `k` through the proxy while `fault` hits every GET
/// of the big layer: the pull must fail, leave no blob of that layer and
/// nothing else behind. Returns its stderr.
#[track_caller]
fn pull_fails_leaving_nothing(
    k: &Kiln,
    proxy: &FaultProxy,
    img: &FixtureImage,
    fault: Fault,
) -> String {
    proxy.inject("GET", &big_layer(img), fault, u32::MAX);
    let err = k.fails(&["pull", &format!("{}/app:1", proxy.host())]);
    k.assert_no_blob(&sha256(&img.layers[0]));
    assert_empty_store(k);
    err
}

#[test]
fn service_unavailable_is_retried() {
    let (_reg, proxy, img) = setup();
    proxy.inject("GET", "/manifests/", Fault::Unavailable, 1);
    proxy.inject("GET", &big_layer(&img), Fault::Unavailable, 2);
    let b = kiln();
    let target = format!("{}/app:1", proxy.host());
    let (_, err) = b.ok_with_stderr(&["pull", &target]);
    assert!(
        err.contains("retrying GET") && err.contains("HTTP 503"),
        "{err}"
    );
    assert_eq!(b.id(&target), sha256(&img.config_json()));
    let log = proxy.log();
    assert_eq!(
        log.iter().filter(|l| l.ends_with("Unavailable")).count(),
        3,
        "{log:#?}"
    );

    // Uploads too: a 503 on the blob PUT is retried with the same bytes.
    proxy.inject("PUT", "/blobs/uploads/", Fault::Unavailable, 1);
    let (_, err) = b.ok_with_stderr(&["push", &target, &format!("{}/copy:1", proxy.host())]);
    assert!(err.contains("retrying PUT"), "{err}");
    let c = kiln();
    c.ok(&["pull", &format!("{}/copy:1", proxy.host())]);
    assert_eq!(
        c.id(&format!("{}/copy:1", proxy.host())),
        sha256(&img.config_json())
    );
}

#[test]
fn persistent_errors_fail_after_the_retries_and_leave_nothing() {
    let (_reg, proxy, img) = setup();
    let b = kiln().var("KILN_REGISTRY_RETRIES", "2");
    let err = pull_fails_leaving_nothing(&b, &proxy, &img, Fault::Unavailable);
    assert!(
        err.contains(&format!("{}/v2/app{}", proxy.host(), big_layer(&img)))
            && err.contains("unexpected status 503")
            && err.contains("(after 3 attempts)"),
        "{err}"
    );
}

#[test]
fn truncated_body_is_an_error() {
    let (_reg, proxy, img) = setup();
    let err = pull_fails_leaving_nothing(&kiln(), &proxy, &img, Fault::Truncate);
    let len = img.layers[0].len();
    assert!(
        err.contains(&format!(
            "size mismatch for blob {} of {}/app: expected {len} bytes, got {}",
            sha256(&img.layers[0]),
            proxy.host(),
            len / 2
        )),
        "{err}"
    );
}

#[test]
fn wrong_digest_is_an_error() {
    let (_reg, proxy, img) = setup();
    let err = pull_fails_leaving_nothing(&kiln(), &proxy, &img, Fault::Corrupt);
    assert!(
        err.contains(&format!(
            "layer {} of {}/app: digest mismatch",
            sha256(&img.layers[0]),
            proxy.host()
        )),
        "{err}"
    );
}

#[test]
fn reset_mid_body_resumes_where_it_stopped() {
    let (_reg, proxy, img) = setup();
    proxy.inject("GET", &big_layer(&img), Fault::Reset, 2);
    let b = kiln();
    let target = format!("{}/app:1", proxy.host());
    let (_, err) = b.ok_with_stderr(&["pull", &target]);
    assert!(err.contains("retrying GET"), "{err}");
    assert_eq!(b.id(&target), sha256(&img.config_json()));
    let gets = proxy
        .log()
        .iter()
        .filter(|l| l.starts_with("GET") && l.contains(&big_layer(&img)))
        .count();
    assert_eq!(gets, 3, "{:#?}", proxy.log());
    // The unpacked layer is right (diffID verified when unpacking).
    let (tar, _) = b.ok_with_stderr(&["export", &target]);
    assert!(tar.contains("hello from the second layer"));
}

#[test]
fn stall_past_the_timeout_is_retried_then_fails() {
    let (_reg, proxy, img) = setup();
    // Generous margins: a loaded CI machine must not time out the
    // requests that are not stalled.
    let stall = Fault::Stall(Duration::from_secs(6));
    proxy.inject("GET", &big_layer(&img), stall, 1);
    let b = kiln().var("KILN_REGISTRY_TIMEOUT", "2");
    let target = format!("{}/app:1", proxy.host());
    let (_, err) = b.ok_with_stderr(&["pull", &target]);
    assert!(
        err.contains("retrying GET") && err.contains("timed out: no progress for 2s"),
        "{err}"
    );
    assert_eq!(b.id(&target), sha256(&img.config_json()));

    let c = kiln()
        .var("KILN_REGISTRY_TIMEOUT", "2")
        .var("KILN_REGISTRY_RETRIES", "1");
    let err = pull_fails_leaving_nothing(&c, &proxy, &img, stall);
    assert!(
        err.contains(&format!(
            "GET http://{}/v2/app{}",
            proxy.host(),
            big_layer(&img)
        )) && err.contains("timed out: no progress for 2s")
            && err.contains("(after 2 attempts)"),
        "{err}"
    );

    let d = kiln().var("KILN_REGISTRY_TIMEOUT", "soon");
    let err = d.fails(&["pull", &target]);
    assert!(
        err.contains("KILN_REGISTRY_TIMEOUT=\"soon\": expected a positive number of seconds"),
        "{err}"
    );
}
