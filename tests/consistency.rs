//! Writes that cannot be lost to a race, and errors that keep their kind across members: two
//! writers holding the same ETag (on one member, or on two) get exactly one success and one
//! 412; a failure decided on the leader reaches a follower's client with the leader's status
//! and message; an untrusted caller is never forwarded to be answered with a member's trust.

mod common;

use common::{Member, TestCluster, rt};
use rxd::client::Connection;

/// Sends a request; returns its status and the envelope's error text (empty on success).
async fn send(conn: &Connection, method: &str, path: &str, body: serde_json::Value, etag: Option<&str>) -> (u16, String) {
    let headers: Vec<(&str, String)> = etag.map(|e| vec![("If-Match", format!("\"{e}\""))]).unwrap_or_default();
    let (status, _, raw) = conn.raw(method, path, Some(body.to_string().into_bytes()), &headers).await.expect("request sent");
    let error = serde_json::from_slice::<serde_json::Value>(&raw)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_default();
    (status, error)
}

async fn etag(conn: &Connection, path: &str) -> (String, serde_json::Value) {
    let reply = conn.get(path).await.expect("get");
    (reply.etag().expect("an ETag"), reply.envelope.metadata)
}

/// Two PUTs of `path`, one from each connection, at once, each with the ETag its connection
/// read of the same state (one member's view of the server configuration includes its own
/// address, so each asks its own): each sets its own key in `config`. Exactly one lands; the
/// other is told the ETag no longer matches; the stored object is the winner's.
async fn race(a: &Connection, b: &Connection, path: &str, round: usize) {
    let (tag_a, current_a) = etag(a, path).await;
    let (tag_b, current_b) = etag(b, path).await;
    let body = |current: &serde_json::Value, who: &str| {
        let mut put = current.clone();
        put["config"][format!("user.{who}")] = serde_json::Value::String(round.to_string());
        put
    };
    let (first, second) = tokio::join!(
        send(a, "PUT", path, body(&current_a, "a"), Some(&tag_a)),
        send(b, "PUT", path, body(&current_b, "b"), Some(&tag_b))
    );
    let statuses = [first.0, second.0];
    assert!(
        statuses.contains(&200) && statuses.contains(&412),
        "round {round} on {path}: exactly one write must land, got {first:?} and {second:?}"
    );
    let loser = if first.0 == 412 { &first.1 } else { &second.1 };
    assert!(loser.contains("ETag doesn't match"), "{loser}");
    let (_, now) = etag(a, path).await;
    let winner = if first.0 == 200 { "a" } else { "b" };
    assert_eq!(now["config"][format!("user.{winner}")], round.to_string(), "the winner's write is stored: {now}");
}

#[test]
fn two_writers_with_one_etag_on_one_member_get_one_success_and_one_412() {
    let m = Member::start();
    let (a, b) = (m.conn(), m.conn());
    rt().block_on(async {
        for round in 0..20 {
            race(&a, &b, "/1.0/profiles/default", round).await;
        }
        for round in 0..10 {
            race(&a, &b, "/1.0/projects/default", round).await;
        }
    });
}

#[test]
fn two_writers_with_one_etag_on_two_members_get_one_success_and_one_412() {
    let c = TestCluster::form(3);
    let (a, b) = (c.members[0].conn(), c.members[1].conn());
    rt().block_on(async {
        for round in 0..20 {
            race(&a, &b, "/1.0/profiles/default", round).await;
        }
        // The server configuration's cluster-wide part, written through two members.
        for round in 0..10 {
            race(&a, &b, "/1.0", round).await;
        }
    });
    // A PATCH without an ETag merges over whatever is there: none of them is lost.
    let (a, b) = (c.members[1].conn(), c.members[2].conn());
    rt().block_on(async {
        let patches = (0..16).map(|i| {
            let conn = if i % 2 == 0 { &a } else { &b };
            send(conn, "PATCH", "/1.0/profiles/default", serde_json::json!({"config": {format!("user.p{i}"): "x"}}), None)
        });
        for (status, error) in futures_util::future::join_all(patches).await {
            assert_eq!(status, 200, "{error}");
        }
        let (_, profile) = etag(&a, "/1.0/profiles/default").await;
        for i in 0..16 {
            assert_eq!(profile["config"][format!("user.p{i}")], "x", "patch {i} was lost: {profile}");
        }
    });
}

#[test]
fn a_failure_decided_on_the_leader_reaches_a_followers_client_with_its_status() {
    let c = TestCluster::form(3);
    let leader = c.leader(0);
    let follower = (leader + 1) % 3;
    let (on_leader, on_follower) = (c.members[leader].conn(), c.members[follower].conn());
    rt().block_on(async {
        // SQLite refuses the statement on the leader, where the write is applied: a 500.
        let bad_write = serde_json::json!({"database": "global", "query": "INSERT INTO no_such_table VALUES (1)"});
        let here = send(&on_leader, "POST", "/internal/sql", bad_write.clone(), None).await;
        let there = send(&on_follower, "POST", "/internal/sql", bad_write, None).await;
        assert_eq!(here.0, 500, "{here:?}");
        assert_eq!(there, here, "the follower answers what the leader decided");
        // A guard of the batch fails on the leader: not found stays 404.
        let missing = send(&on_follower, "DELETE", "/1.0/profiles/nobody", serde_json::json!({}), None).await;
        assert_eq!(missing, send(&on_leader, "DELETE", "/1.0/profiles/nobody", serde_json::json!({}), None).await);
        assert_eq!(missing.0, 404, "{missing:?}");
        // A conflict stays 409.
        let twice = serde_json::json!({"name": "twice"});
        assert_eq!(send(&on_follower, "POST", "/1.0/profiles", twice.clone(), None).await.0, 201);
        let again = send(&on_follower, "POST", "/1.0/profiles", twice, None).await;
        assert_eq!(again.0, 409, "{again:?}");
        assert!(again.1.contains("already exists"), "{again:?}");
    });
}

#[test]
fn an_untrusted_caller_is_answered_where_it_asked_whatever_the_target() {
    let c = TestCluster::form(2);
    let address = c.members[0].address();
    rt().block_on(async {
        let stranger = rxd::tls::generate(rxd::tls::CertKind::Client).expect("cert");
        let conn = Connection::https(&address, rxd::tls::ServerPin::AcceptAny, Some(&stranger)).expect("conn");
        // Forwarded, the request would carry the member's own certificate and come back trusted.
        let reply = conn.get("/1.0?target=node2").await.expect("get");
        let info = reply.envelope.metadata;
        assert_eq!(info["auth"], "untrusted", "{info}");
        assert!(info.get("environment").is_none() && info.get("config").is_none(), "{info}");
        let (status, _) = send(&conn, "GET", "/1.0/profiles?target=node2", serde_json::json!({}), None).await;
        assert_eq!(status, 403);
    });
}
