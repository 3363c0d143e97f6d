//! The REST API of one member, spoken directly: envelopes, status codes, validation that
//! changes nothing, ETags, operations, events, and the HTTPS listener moving at run time.

mod common;

use std::time::Duration;

use common::{Member, rt};
use rxd::client::Connection;
use rxd::tls::ServerPin;

async fn raw(conn: &Connection, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let (status, _, bytes) = conn.raw(method, path, Some(body.as_bytes().to_vec()), &[]).await.expect("request");
    (status, serde_json::from_slice(&bytes).expect("json envelope"))
}

fn assert_error(v: &serde_json::Value, code: u16, message: &str) {
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error_code"], code, "{v}");
    assert_eq!(v["status_code"], 0);
    assert_eq!(v["metadata"], serde_json::Value::Null);
    assert!(v["error"].as_str().unwrap_or_default().contains(message), "{v}");
}

#[test]
fn server_info_has_lxd_fields() {
    let m = Member::start();
    rt().block_on(async {
        let (status, v) = raw(&m.conn(), "GET", "/1.0", "").await;
        assert_eq!(status, 200);
        for k in ["type", "status", "status_code", "operation", "error_code", "error", "metadata"] {
            assert!(v.get(k).is_some(), "envelope lacks {k}");
        }
        let md = &v["metadata"];
        assert_eq!(md["auth"], "trusted");
        assert_eq!(md["api_version"], "1.0");
        assert_eq!(md["auth_methods"], serde_json::json!(["tls"]));
        assert_eq!(md["api_extensions"].as_array().map(Vec::len), Some(318));
        assert_eq!(md["environment"]["server_clustered"], false);
        assert_eq!(md["environment"]["server_version"], "5.0.2");
        assert_eq!(md["config"], serde_json::json!({}));
        let (_, root) = raw(&m.conn(), "GET", "/", "").await;
        assert_eq!(root["metadata"], serde_json::json!(["/1.0"]));
    });
}

#[test]
fn errors_are_envelopes_and_change_nothing() {
    let m = Member::start();
    rt().block_on(async {
        let c = m.conn();
        let (s, v) = raw(&c, "GET", "/1.0/nope", "").await;
        assert_eq!(s, 404);
        assert_error(&v, 404, "not found");
        let (s, v) = raw(&c, "DELETE", "/1.0", "").await;
        assert_eq!(s, 405);
        assert_error(&v, 405, "method not allowed");
        let (s, v) = raw(&c, "POST", "/1.0/profiles", "{\"name\": ").await;
        assert_eq!(s, 400);
        assert_error(&v, 400, "EOF");
        let (s, v) = raw(&c, "PATCH", "/1.0", r#"{"config":{"user.ok":"1","bogus.key":"1"}}"#).await;
        assert_eq!(s, 400);
        assert_error(&v, 400, "cannot set 'bogus.key' to '1': unknown key");
        let (s, v) = raw(&c, "PATCH", "/1.0", r#"{"config":{"cluster.offline_threshold":"10"}}"#).await;
        assert_eq!(s, 400);
        assert_error(&v, 400, "Value must be greater than '10'");
        let (_, info) = raw(&c, "GET", "/1.0", "").await;
        assert_eq!(info["metadata"]["config"], serde_json::json!({}), "a refused change must change nothing");
        let (_, profiles) = raw(&c, "GET", "/1.0/profiles", "").await;
        assert_eq!(profiles["metadata"], serde_json::json!(["/1.0/profiles/default"]));
        let (s, v) = raw(&c, "GET", "/1.0/operations/00000000-0000-0000-0000-000000000000", "").await;
        assert_eq!(s, 404);
        assert_error(&v, 404, "Operation not found");
    });
}

#[test]
fn trust_password_is_stored_hashed_and_shown_as_true() {
    let m = Member::start();
    rt().block_on(async {
        let c = m.conn();
        let (s, _) = raw(&c, "PATCH", "/1.0", r#"{"config":{"core.trust_password":"sekret-pw"}}"#).await;
        assert_eq!(s, 200);
        let (_, v) = raw(&c, "GET", "/1.0", "").await;
        assert_eq!(v["metadata"]["config"]["core.trust_password"], true);
    });
    let bytes = std::fs::read(m.lxd_dir().join("database/global/state.db")).expect("db");
    let wal = std::fs::read(m.lxd_dir().join("database/global/state.db-wal")).unwrap_or_default();
    let needle = b"sekret-pw";
    let contains = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(!contains(&bytes) && !contains(&wal), "the trust password reached the disk in clear");
}

#[test]
fn profiles_crud_with_etag() {
    let m = Member::start();
    rt().block_on(async {
        let c = m.conn();
        let (s, v) = raw(&c, "POST", "/1.0/profiles", r#"{"name":"web","config":{"limits.cpu":"2"},"description":"d"}"#).await;
        assert_eq!(s, 201, "{v}");
        let (s, v) = raw(&c, "POST", "/1.0/profiles", r#"{"name":"web"}"#).await;
        assert_eq!(s, 409, "{v}");
        let (s, v) = raw(&c, "POST", "/1.0/profiles", r#"{"name":"bad","config":{"nonsense":"1"}}"#).await;
        assert_eq!(s, 400, "{v}");
        let (s, v) =
            raw(&c, "POST", "/1.0/profiles", r#"{"name":"bad","devices":{"root":{"type":"disk","path":"/","pool":"missing"}}}"#)
                .await;
        assert_eq!(s, 400, "{v}");
        let reply = c.get("/1.0/profiles/web").await.expect("get");
        let etag = reply.etag().expect("etag");
        let bad = c
            .raw("PUT", "/1.0/profiles/web", Some(br#"{"config":{}}"#.to_vec()), &[("If-Match", "\"0000\"".into())])
            .await
            .expect("put");
        assert_eq!(bad.0, 412);
        let v: serde_json::Value = serde_json::from_slice(&bad.2).expect("json");
        assert_error(&v, 412, &format!("ETag doesn't match: {etag} vs 0000"));
        let body = serde_json::json!({"config": {"limits.cpu": "4"}, "description": "e", "devices": {}});
        c.request("PUT", "/1.0/profiles/web", Some(&body), Some(&etag)).await.expect("put with etag");
        c.request("PATCH", "/1.0/profiles/web", Some(&serde_json::json!({"config": {"user.x": "1"}})), None)
            .await
            .expect("patch");
        let p: rxd::api::Profile = c.get_json("/1.0/profiles/web").await.expect("get");
        assert_eq!(p.config.get("limits.cpu").map(String::as_str), Some("4"));
        assert_eq!(p.config.get("user.x").map(String::as_str), Some("1"));
        assert_eq!(p.description, "e");
        c.request("POST", "/1.0/profiles/web", Some(&serde_json::json!({"name": "www"})), None).await.expect("rename");
        let (s, _) = raw(&c, "GET", "/1.0/profiles/web", "").await;
        assert_eq!(s, 404);
        let (s, v) = raw(&c, "DELETE", "/1.0/profiles/default", "").await;
        assert_eq!(s, 403, "{v}");
        c.request("DELETE", "/1.0/profiles/www", None, None).await.expect("delete");
        let (_, list) = raw(&c, "GET", "/1.0/profiles?recursion=1", "").await;
        assert_eq!(list["metadata"].as_array().map(Vec::len), Some(1));
    });
}

#[test]
fn projects_and_storage_pools() {
    let m = Member::start();
    rt().block_on(async {
        let c = m.conn();
        let p: rxd::api::Project = c.get_json("/1.0/projects/default").await.expect("default project");
        assert_eq!(p.config.get("features.profiles").map(String::as_str), Some("true"));
        c.request("POST", "/1.0/projects", Some(&serde_json::json!({"name": "p1"})), None).await.expect("create project");
        let profiles: Vec<String> = c.get_json("/1.0/profiles?project=p1").await.expect("profiles of p1");
        assert_eq!(profiles, vec!["/1.0/profiles/default?project=p1".to_string()]);
        c.request("DELETE", "/1.0/projects/p1", None, None).await.expect("delete project");
        let (s, _) = raw(&c, "DELETE", "/1.0/projects/default", "").await;
        assert_eq!(s, 403);

        let (s, v) =
            raw(&c, "POST", "/1.0/storage-pools", r#"{"name":"p","driver":"dir","config":{"source":"/nonexistent/x"}}"#).await;
        assert_eq!(s, 400, "{v}");
        let (s, _) = raw(&c, "POST", "/1.0/storage-pools", r#"{"name":"p","driver":"zfs"}"#).await;
        assert_eq!(s, 400);
        let (s, v) = raw(&c, "POST", "/1.0/storage-pools", r#"{"name":"p","driver":"dir"}"#).await;
        assert_eq!(s, 201, "{v}");
        let pool: rxd::api::StoragePool = c.get_json("/1.0/storage-pools/p").await.expect("pool");
        assert_eq!(pool.status, "Created");
        let source = pool.config.get("source").cloned().expect("source");
        assert!(std::path::Path::new(&source).join("containers").is_dir());
        let dev = serde_json::json!({"devices": {"root": {"type": "disk", "path": "/", "pool": "p"}}});
        c.request("PATCH", "/1.0/profiles/default", Some(&dev), None).await.expect("root disk");
        let (s, v) = raw(&c, "DELETE", "/1.0/storage-pools/p", "").await;
        assert_eq!(s, 400, "in use: {v}");
    });
}

#[test]
fn https_listener_follows_core_https_address() {
    let m = Member::start();
    let addr1 = m.address();
    let addr2 = format!("{}:8444", m.ip);
    rt().block_on(async {
        let c = m.conn();
        let probe = |a: String| async move {
            let conn = Connection::https(&a, ServerPin::AcceptAny, None).expect("conn");
            conn.get_json::<serde_json::Value>("/1.0").await.map(|v| v["auth"].clone())
        };
        assert!(probe(addr1.clone()).await.is_err(), "nothing listens before configuration");
        c.request("PATCH", "/1.0", Some(&serde_json::json!({"config": {"core.https_address": addr1}})), None).await.expect("set");
        assert_eq!(probe(addr1.clone()).await.expect("listening"), "untrusted");
        c.request("PATCH", "/1.0", Some(&serde_json::json!({"config": {"core.https_address": addr2}})), None)
            .await
            .expect("move");
        assert_eq!(probe(addr2.clone()).await.expect("moved"), "untrusted");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(probe(addr1.clone()).await.is_err(), "old address closed");
        // An address that cannot be bound is refused and changes nothing.
        let (s, v) = raw(&c, "PATCH", "/1.0", r#"{"config":{"core.https_address":"192.0.2.1:8443"}}"#).await;
        assert_eq!(s, 400, "{v}");
        let (_, info) = raw(&c, "GET", "/1.0", "").await;
        assert_eq!(info["metadata"]["config"]["core.https_address"], addr2.as_str());
        assert_eq!(probe(addr2.clone()).await.expect("still listening"), "untrusted");
        c.request("PUT", "/1.0", Some(&serde_json::json!({"config": {}})), None).await.expect("unset");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(probe(addr2).await.is_err(), "closed after unset");
    });
}

#[test]
fn untrusted_clients_see_little_and_authenticate_with_password_or_single_use_token() {
    let m = Member::start();
    let addr = m.address();
    rt().block_on(async {
        let c = m.conn();
        let cfg = serde_json::json!({"config": {"core.https_address": addr, "core.trust_password": "sekret"}});
        c.request("PATCH", "/1.0", Some(&cfg), None).await.expect("config");
        let id1 = rxd::tls::generate(rxd::tls::CertKind::Client).expect("cert");
        let remote = Connection::https(&addr, ServerPin::AcceptAny, Some(&id1)).expect("conn");
        let (s, v) = raw(&remote, "GET", "/1.0", "").await;
        assert_eq!(s, 200);
        assert_eq!(v["metadata"]["auth"], "untrusted");
        assert!(v["metadata"].get("environment").is_none() && v["metadata"].get("config").is_none());
        let (s, v) = raw(&remote, "GET", "/1.0/profiles", "").await;
        assert_eq!(s, 403);
        assert_error(&v, 403, "not authorized");
        let (s, _) = raw(&remote, "POST", "/1.0/certificates", r#"{"type":"client","password":"wrong"}"#).await;
        assert_eq!(s, 403);
        let (s, _) = raw(&remote, "POST", "/1.0/certificates", r#"{"type":"client","password":"sekret"}"#).await;
        assert_eq!(s, 201);
        let (_, v) = raw(&remote, "GET", "/1.0", "").await;
        assert_eq!(v["metadata"]["auth"], "trusted");

        // A token is created as a running token operation and works exactly once.
        let reply = c
            .request(
                "POST",
                "/1.0/certificates",
                Some(&serde_json::json!({"name": "tok", "type": "client", "token": true})),
                None,
            )
            .await
            .expect("token");
        assert_eq!(reply.status, 202);
        let op: rxd::api::Operation = serde_json::from_value(reply.envelope.metadata).expect("op");
        assert_eq!(op.class, "token");
        assert_eq!(op.status_code, 103);
        let token = rxd::api::CertificateAddToken {
            client_name: "tok".into(),
            fingerprint: op.metadata["fingerprint"].as_str().unwrap_or_default().into(),
            addresses: vec![addr.clone()],
            secret: op.metadata["secret"].as_str().unwrap_or_default().into(),
            expires_at: String::new(),
        };
        let body = serde_json::json!({"type": "", "password": token.encode()}).to_string();
        for (i, expected) in [(0, 201), (1, 403)] {
            let id = rxd::tls::generate(rxd::tls::CertKind::Client).expect("cert");
            let conn = Connection::https(&addr, ServerPin::AcceptAny, Some(&id)).expect("conn");
            let (s, v) = raw(&conn, "POST", "/1.0/certificates", &body).await;
            assert_eq!(s, expected, "use {i}: {v}");
        }
        let certs: Vec<rxd::api::Certificate> = c.get_json("/1.0/certificates?recursion=1").await.expect("certs");
        assert!(certs.iter().any(|c| c.name == "tok"));
        let done: rxd::api::Operation = c.get_json(&format!("/1.0/operations/{}", op.id)).await.expect("op");
        assert_eq!(done.status, "Cancelled");

        // A revoked token is refused.
        let reply = c
            .request(
                "POST",
                "/1.0/certificates",
                Some(&serde_json::json!({"name": "tok2", "type": "client", "token": true})),
                None,
            )
            .await
            .expect("token");
        let op: rxd::api::Operation = serde_json::from_value(reply.envelope.metadata).expect("op");
        c.request("DELETE", &format!("/1.0/operations/{}", op.id), None, None).await.expect("revoke");
        let token2 = rxd::api::CertificateAddToken { secret: op.metadata["secret"].as_str().unwrap_or_default().into(), ..token };
        let id = rxd::tls::generate(rxd::tls::CertKind::Client).expect("cert");
        let conn = Connection::https(&addr, ServerPin::AcceptAny, Some(&id)).expect("conn");
        let (s, _) = raw(&conn, "POST", "/1.0/certificates", &serde_json::json!({"password": token2.encode()}).to_string()).await;
        assert_eq!(s, 403);

        // Removing a certificate removes the trust.
        let fp = rxd::tls::fingerprint_pem(&id1.cert).expect("fp");
        c.request("DELETE", &format!("/1.0/certificates/{fp}"), None, None).await.expect("delete");
        let (_, v) = raw(&remote, "GET", "/1.0", "").await;
        assert_eq!(v["metadata"]["auth"], "untrusted");
    });
}

#[test]
fn operations_wait_and_events_websocket() {
    use futures_util::StreamExt;
    let m = Member::start();
    let addr = m.address();
    rt().block_on(async {
        let c = m.conn();
        c.request("PATCH", "/1.0", Some(&serde_json::json!({"config": {"core.https_address": addr}})), None).await.expect("addr");
        let mut ws = c.websocket("/1.0/events?type=lifecycle,operation").await.expect("events");
        let (s, _) = raw(&c, "GET", "/1.0/events?type=bogus", "").await;
        assert_eq!(s, 400);
        c.request("PATCH", "/1.0/profiles/default", Some(&serde_json::json!({"config": {"user.e": "1"}})), None)
            .await
            .expect("patch");
        let reply = c
            .request("POST", "/1.0/certificates", Some(&serde_json::json!({"name": "w", "type": "client", "token": true})), None)
            .await
            .expect("token");
        let op: rxd::api::Operation = serde_json::from_value(reply.envelope.metadata).expect("op");
        let mut seen_lifecycle = false;
        let mut seen_operation = false;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !(seen_lifecycle && seen_operation) {
            let msg = tokio::time::timeout_at(deadline, ws.next()).await.expect("event in time").expect("open").expect("frame");
            let tokio_tungstenite::tungstenite::Message::Text(t) = msg else {
                continue;
            };
            let ev: rxd::api::Event = serde_json::from_str(&t).expect("event json");
            assert_eq!(ev.location, "none");
            if ev.kind == "lifecycle" && ev.metadata["action"] == "profile-updated" {
                seen_lifecycle = true;
            }
            if ev.kind == "operation" && ev.metadata["id"] == op.id.as_str() {
                seen_operation = true;
            }
        }
        let list: serde_json::Value = c.get_json("/1.0/operations").await.expect("list");
        let url = format!("/1.0/operations/{}", op.id);
        assert!(list["running"].as_array().is_some_and(|a| a.iter().any(|u| u.as_str() == Some(url.as_str()))), "{list}");
        let start = std::time::Instant::now();
        let waited: rxd::api::Operation = c.get_json(&format!("/1.0/operations/{}/wait?timeout=1", op.id)).await.expect("wait");
        assert_eq!(waited.status_code, 103);
        assert!(start.elapsed() >= Duration::from_millis(900));
        let c2 = c.clone();
        let id = op.id.clone();
        let waiter = tokio::spawn(async move { c2.get_json::<rxd::api::Operation>(&format!("/1.0/operations/{id}/wait")).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        c.request("DELETE", &format!("/1.0/operations/{}", op.id), None, None).await.expect("cancel");
        let done = tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("wait returns").expect("join").expect("op");
        assert_eq!(done.status, "Cancelled");
    });
}

#[test]
fn logging_events_reach_listeners() {
    use futures_util::StreamExt;
    let m = Member::start();
    rt().block_on(async {
        let c = m.conn();
        let mut ws = c.websocket("/1.0/events?type=logging").await.expect("events");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let _ = c.get("/1.0/profiles").await;
            let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_millis(200), ws.next()).await else {
                assert!(tokio::time::Instant::now() < deadline, "no logging event");
                continue;
            };
            let tokio_tungstenite::tungstenite::Message::Text(t) = msg else {
                continue;
            };
            let ev: rxd::api::Event = serde_json::from_str(&t).expect("json");
            assert_eq!(ev.kind, "logging");
            if ev.metadata["message"] == "Handling API request" && ev.metadata["context"]["url"] == "/1.0/profiles" {
                assert_eq!(ev.metadata["level"], "debug");
                assert!(ev.project.is_empty());
                break;
            }
        }
    });
}
