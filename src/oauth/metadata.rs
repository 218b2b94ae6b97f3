//! RFC 8414 authorization-server metadata and RFC 9728 protected-resource
//! metadata. No value is ever `null` (the TypeScript SDK rejects them).

use serde_json::{json, Value};

use super::{scope, AuthServer};

/// `/.well-known/oauth-authorization-server` (RFC 8414 §2).
pub fn authorization_server(auth: &AuthServer) -> Value {
    let base = &*auth.issuer;
    json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "registration_endpoint": format!("{base}/register"),
        "revocation_endpoint": format!("{base}/revoke"),
        "introspection_endpoint": format!("{base}/introspect"),
        "scopes_supported": scope::all_class_scopes(),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": true,
        "service_documentation": "https://github.com/gatehouse/gatehouse#readme",
    })
}

/// RFC 9728 §2 metadata for one fronted server, with the resource spelled
/// for the host the client used.
pub fn protected_resource(
    auth: &AuthServer,
    resource: &str,
    server: &str,
    scopes: &[String],
) -> Value {
    json!({
        "resource": resource,
        "authorization_servers": [&*auth.issuer],
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
        "resource_name": format!("{server} (through Gatehouse)"),
    })
}

/// The RFC 9728 §5.1 metadata URL for a resource at `http://<host>/mcp/<server>`.
pub fn protected_resource_metadata_url(host: &str, server: &str) -> String {
    format!("http://{host}/.well-known/oauth-protected-resource/mcp/{server}")
}
