//! A client id that is a URL (a Client ID Metadata Document) makes Gatehouse
//! fetch it: an attacker names an address inside the machine or the network
//! (SSRF). Every special-purpose address block is refused before any
//! connection is made, as are URLs that are not plain https documents.

use super::{assert_unchanged, stored};
use crate::support::*;

/// /authorize with this client id: refused with a page (never a redirect),
/// nothing stored, nobody asked.
async fn refused(client_id: &str, says: &str) {
    let fx = Fixture::start("").await;
    let before = stored(&fx);
    let r = fx
        .http
        .get(fx.authorize_url(client_id, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "{client_id}");
    assert!(r.headers().get("location").is_none());
    let page = r.text().await.unwrap();
    assert!(page.contains(says), "{client_id}: {page}");
    assert_unchanged(&fx, &before);
    assert!(fx.pending().await.is_empty());
    fx.stop().await;
}

const INSIDE: &str = "private or local address";

macro_rules! inside {
    ($($name:ident: $host:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread")]
        async fn $name() {
            refused(&format!("https://{}/oauth/client.json", $host), INSIDE).await;
        }
    )*};
}

inside! {
    ssrf_loopback: "127.0.0.1";
    ssrf_loopback_elsewhere_in_its_block: "127.42.0.1";
    ssrf_localhost_by_name: "localhost";
    ssrf_this_network: "0.1.2.3";
    ssrf_private_10: "10.0.0.1";
    ssrf_private_172: "172.16.5.4";
    ssrf_private_192: "192.168.1.1";
    ssrf_carrier_grade_nat: "100.64.0.1";
    ssrf_cloud_metadata: "169.254.169.254";
    ssrf_ietf_protocol_assignments: "192.0.0.8";
    ssrf_benchmarking: "198.18.0.1";
    ssrf_documentation: "203.0.113.7";
    ssrf_multicast: "224.0.0.1";
    ssrf_broadcast: "255.255.255.255";
    ssrf_ipv6_loopback: "[::1]";
    ssrf_ipv4_mapped_ipv6: "[::ffff:127.0.0.1]";
    ssrf_nat64: "[64:ff9b::7f00:1]";
    ssrf_6to4: "[2002:7f00:1::1]";
    ssrf_ipv6_link_local: "[fe80::1]";
    ssrf_ipv6_unique_local: "[fd00::1]";
    ssrf_teredo: "[2001::1]";
}

#[tokio::test(flavor = "multi_thread")]
async fn cimd_over_plain_http() {
    refused("http://example.com/oauth/client.json", "must use https").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cimd_with_credentials_in_the_url() {
    refused(
        "https://user:pass@example.com/oauth/client.json",
        "credentials",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cimd_with_a_fragment() {
    refused("https://example.com/oauth/client.json#x", "fragment").await;
}
