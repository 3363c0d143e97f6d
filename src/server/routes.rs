//! THE route table. Each entry names the method, the path pattern, who may call it, where it
//! runs (this member, the member hosting the instance, `?target=`, the leader, the member
//! holding the operation, the member named in the path, or where the scheduler places a new
//! instance) and the typed action the request parses into. Routing, 404/405, authentication
//! and forwarding all read this one table (see `dispatch`); an action parses its request
//! (typed fields, LXD's error for a bad body) and hands it to one service function.

use std::sync::{Arc, LazyLock};

use http::Method;

use super::handlers::{
    certificates, cluster, events, exec, files, images, instances, internal, operations, profiles, projects, server, snapshots,
    storage,
};
use super::request::Request;
use super::response::{Answer, ApiError, Response};
use crate::services::Member;
use crate::util::BoxFuture;

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, with or without a trusted certificate.
    Untrusted,
    /// The unix socket or a trusted certificate.
    Trusted,
    /// The unix socket or another cluster member only (`/internal/*`).
    Internal,
}

/// Where a route's request is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runs {
    Here,
    /// The member `?target=<name>` names, when it is another one.
    Target,
    /// The member hosting the instance `{name}` (project from `?project=`).
    Instance,
    /// The raft leader.
    Leader,
    /// The member holding operation `{id}`.
    Operation,
    /// The cluster member `{name}` of the path.
    Member,
    /// The member the scheduler places a new instance on (or `?target=`).
    Placed,
}

/// The values of a pattern's `{…}` segments, in order.
#[derive(Debug, Default)]
pub struct Params(Vec<String>);

impl Params {
    /// The `i`-th parameter (patterns guarantee it exists; "" otherwise).
    pub fn at(&self, i: usize) -> &str {
        self.0.get(i).map(String::as_str).unwrap_or("")
    }
}

/// A request parsed into what it asks for, and how that is done.
pub trait Action: Sized + Send + 'static {
    fn parse(req: &mut Request, params: &Params) -> Result<Self, ApiError>;
    fn run(self, member: &Arc<Member>) -> impl std::future::Future<Output = Answer> + Send;
}

type Handle = for<'a> fn(&'a Arc<Member>, Request, Params) -> BoxFuture<'a, Response>;

fn handle<A: Action>(member: &Arc<Member>, mut req: Request, params: Params) -> BoxFuture<'_, Response> {
    Box::pin(async move {
        match A::parse(&mut req, &params) {
            Ok(action) => action.run(member).await.unwrap_or_else(Response::Error),
            Err(e) => Response::Error(e),
        }
    })
}

pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub runs: Runs,
    /// Whether the connection is upgraded to a websocket.
    pub websocket: bool,
    /// The action's type name (for logs and the layout test).
    pub action: &'static str,
    handle: Handle,
}

impl Route {
    pub fn run<'a>(&self, member: &'a Arc<Member>, req: Request, params: Params) -> BoxFuture<'a, Response> {
        (self.handle)(member, req, params)
    }
}

macro_rules! route {
    ($method:ident $path:literal, $access:ident, $runs:ident => $action:ty) => {
        Route {
            method: Method::$method,
            path: $path,
            access: Access::$access,
            runs: Runs::$runs,
            websocket: false,
            action: stringify!($action),
            handle: handle::<$action>,
        }
    };
    ($method:ident $path:literal, $access:ident, $runs:ident => websocket $action:ty) => {
        Route {
            method: Method::$method,
            path: $path,
            access: Access::$access,
            runs: Runs::$runs,
            websocket: true,
            action: stringify!($action),
            handle: handle::<$action>,
        }
    };
}

pub static ROUTES: &[Route] = &[
    route!(GET "/", Untrusted, Here => server::Root),
    route!(GET "/1.0", Untrusted, Target => server::Get),
    route!(PUT "/1.0", Trusted, Target => server::Update),
    route!(PATCH "/1.0", Trusted, Target => server::Update),
    route!(GET "/1.0/events", Trusted, Here => websocket events::Subscribe),
    // Certificates.
    route!(GET "/1.0/certificates", Trusted, Here => certificates::List),
    route!(POST "/1.0/certificates", Untrusted, Here => certificates::Add),
    route!(GET "/1.0/certificates/{fingerprint}", Trusted, Here => certificates::Get),
    route!(PUT "/1.0/certificates/{fingerprint}", Trusted, Here => certificates::Update),
    route!(PATCH "/1.0/certificates/{fingerprint}", Trusted, Here => certificates::Update),
    route!(DELETE "/1.0/certificates/{fingerprint}", Trusted, Here => certificates::Delete),
    // Operations.
    route!(GET "/1.0/operations", Trusted, Here => operations::List),
    route!(GET "/1.0/operations/{id}", Trusted, Operation => operations::Get),
    route!(DELETE "/1.0/operations/{id}", Trusted, Operation => operations::Cancel),
    route!(GET "/1.0/operations/{id}/wait", Trusted, Operation => operations::Wait),
    // The secret in the query authenticates an operation's websockets (as in LXD).
    route!(GET "/1.0/operations/{id}/websocket", Untrusted, Operation => websocket operations::Websocket),
    // Instances.
    route!(GET "/1.0/instances", Trusted, Target => instances::List),
    route!(POST "/1.0/instances", Trusted, Placed => instances::Create),
    route!(GET "/1.0/instances/{name}", Trusted, Instance => instances::Get),
    route!(PUT "/1.0/instances/{name}", Trusted, Instance => instances::Update),
    route!(PATCH "/1.0/instances/{name}", Trusted, Instance => instances::Update),
    route!(POST "/1.0/instances/{name}", Trusted, Instance => instances::Rename),
    route!(DELETE "/1.0/instances/{name}", Trusted, Instance => instances::Delete),
    route!(GET "/1.0/instances/{name}/state", Trusted, Instance => instances::State),
    route!(PUT "/1.0/instances/{name}/state", Trusted, Instance => instances::ChangeState),
    route!(POST "/1.0/instances/{name}/exec", Trusted, Instance => exec::Exec),
    route!(GET "/1.0/instances/{name}/files", Trusted, Instance => files::Pull),
    route!(POST "/1.0/instances/{name}/files", Trusted, Instance => files::Push),
    route!(DELETE "/1.0/instances/{name}/files", Trusted, Instance => files::Remove),
    route!(GET "/1.0/instances/{name}/console", Trusted, Instance => files::Console),
    route!(DELETE "/1.0/instances/{name}/console", Trusted, Instance => files::ClearConsole),
    route!(GET "/1.0/instances/{name}/logs", Trusted, Instance => files::Logs),
    route!(GET "/1.0/instances/{name}/logs/{file}", Trusted, Instance => files::Log),
    route!(DELETE "/1.0/instances/{name}/logs/{file}", Trusted, Instance => files::DeleteLog),
    route!(GET "/1.0/instances/{name}/snapshots", Trusted, Instance => snapshots::List),
    route!(POST "/1.0/instances/{name}/snapshots", Trusted, Instance => snapshots::Create),
    route!(GET "/1.0/instances/{name}/snapshots/{snapshot}", Trusted, Instance => snapshots::Get),
    route!(POST "/1.0/instances/{name}/snapshots/{snapshot}", Trusted, Instance => snapshots::Rename),
    route!(DELETE "/1.0/instances/{name}/snapshots/{snapshot}", Trusted, Instance => snapshots::Delete),
    // Images.
    route!(GET "/1.0/images", Trusted, Here => images::List),
    route!(POST "/1.0/images", Trusted, Here => images::Import),
    route!(GET "/1.0/images/aliases", Trusted, Here => images::AliasList),
    route!(POST "/1.0/images/aliases", Trusted, Here => images::AliasCreate),
    route!(GET "/1.0/images/aliases/{name}", Trusted, Here => images::AliasGet),
    route!(PUT "/1.0/images/aliases/{name}", Trusted, Here => images::AliasUpdate),
    route!(PATCH "/1.0/images/aliases/{name}", Trusted, Here => images::AliasUpdate),
    route!(POST "/1.0/images/aliases/{name}", Trusted, Here => images::AliasRename),
    route!(DELETE "/1.0/images/aliases/{name}", Trusted, Here => images::AliasDelete),
    route!(GET "/1.0/images/{fingerprint}", Trusted, Here => images::Get),
    route!(PUT "/1.0/images/{fingerprint}", Trusted, Here => images::Update),
    route!(PATCH "/1.0/images/{fingerprint}", Trusted, Here => images::Update),
    route!(DELETE "/1.0/images/{fingerprint}", Trusted, Here => images::Delete),
    route!(GET "/1.0/images/{fingerprint}/export", Trusted, Here => images::Export),
    // Profiles and projects.
    route!(GET "/1.0/profiles", Trusted, Here => profiles::List),
    route!(POST "/1.0/profiles", Trusted, Here => profiles::Create),
    route!(GET "/1.0/profiles/{name}", Trusted, Here => profiles::Get),
    route!(PUT "/1.0/profiles/{name}", Trusted, Here => profiles::Replace),
    route!(PATCH "/1.0/profiles/{name}", Trusted, Here => profiles::Patch),
    route!(POST "/1.0/profiles/{name}", Trusted, Here => profiles::Rename),
    route!(DELETE "/1.0/profiles/{name}", Trusted, Here => profiles::Delete),
    route!(GET "/1.0/projects", Trusted, Here => projects::List),
    route!(POST "/1.0/projects", Trusted, Here => projects::Create),
    route!(GET "/1.0/projects/{name}", Trusted, Here => projects::Get),
    route!(PUT "/1.0/projects/{name}", Trusted, Here => projects::Update),
    route!(PATCH "/1.0/projects/{name}", Trusted, Here => projects::Update),
    route!(POST "/1.0/projects/{name}", Trusted, Here => projects::Rename),
    route!(DELETE "/1.0/projects/{name}", Trusted, Here => projects::Delete),
    // Storage pools.
    route!(GET "/1.0/storage-pools", Trusted, Here => storage::List),
    route!(POST "/1.0/storage-pools", Trusted, Here => storage::Create),
    route!(GET "/1.0/storage-pools/{name}", Trusted, Target => storage::Get),
    route!(PUT "/1.0/storage-pools/{name}", Trusted, Target => storage::Update),
    route!(PATCH "/1.0/storage-pools/{name}", Trusted, Target => storage::Update),
    route!(DELETE "/1.0/storage-pools/{name}", Trusted, Here => storage::Delete),
    // The cluster.
    route!(GET "/1.0/cluster", Trusted, Here => cluster::Get),
    route!(PUT "/1.0/cluster", Trusted, Here => cluster::Update),
    route!(GET "/1.0/cluster/members", Trusted, Here => cluster::Members),
    route!(POST "/1.0/cluster/members", Trusted, Here => cluster::AddToken),
    route!(GET "/1.0/cluster/members/{name}", Trusted, Here => cluster::MemberGet),
    route!(PUT "/1.0/cluster/members/{name}", Trusted, Here => cluster::MemberUpdate),
    route!(PATCH "/1.0/cluster/members/{name}", Trusted, Here => cluster::MemberUpdate),
    route!(POST "/1.0/cluster/members/{name}", Trusted, Here => cluster::MemberRename),
    route!(DELETE "/1.0/cluster/members/{name}", Trusted, Leader => cluster::MemberRemove),
    route!(POST "/1.0/cluster/members/{name}/state", Trusted, Member => cluster::MemberState),
    route!(GET "/1.0/cluster/groups", Trusted, Here => cluster::Groups),
    route!(POST "/1.0/cluster/groups", Trusted, Here => cluster::GroupCreate),
    route!(GET "/1.0/cluster/groups/{name}", Trusted, Here => cluster::GroupGet),
    route!(PUT "/1.0/cluster/groups/{name}", Trusted, Here => cluster::GroupUpdate),
    route!(PATCH "/1.0/cluster/groups/{name}", Trusted, Here => cluster::GroupUpdate),
    route!(POST "/1.0/cluster/groups/{name}", Trusted, Here => cluster::GroupRename),
    route!(DELETE "/1.0/cluster/groups/{name}", Trusted, Here => cluster::GroupDelete),
    // What members and the local tools (`lxd waitready`, `lxd shutdown`, `lxd sql`) call.
    route!(GET "/internal/ready", Internal, Here => internal::Ready),
    route!(PUT "/internal/shutdown", Internal, Here => internal::Shutdown),
    route!(POST "/internal/raft", Internal, Here => internal::RaftMessages),
    route!(POST "/internal/raft/snapshot", Internal, Here => internal::RaftSnapshot),
    route!(POST "/internal/db", Internal, Here => internal::Db),
    route!(GET "/internal/sql", Internal, Here => internal::SqlDump),
    route!(POST "/internal/sql", Internal, Here => internal::SqlRun),
    route!(POST "/internal/cluster/accept", Internal, Leader => cluster::Accept),
    route!(POST "/internal/cluster/rebalance", Internal, Leader => cluster::Rebalance),
    route!(POST "/internal/cluster/assign", Internal, Here => cluster::Assign),
    route!(POST "/internal/cluster/handover", Internal, Leader => cluster::Handover),
    route!(POST "/internal/cluster/heartbeat", Internal, Here => cluster::Heartbeat),
    route!(POST "/internal/cluster/token", Internal, Here => cluster::TokenCheck),
    route!(POST "/internal/cluster/upgraded", Internal, Here => cluster::Upgraded),
    route!(DELETE "/internal/cluster/raft-node/{address}", Internal, Leader => cluster::RemoveRaftNode),
    route!(GET "/internal/images/{fingerprint}", Internal, Here => images::FileGet),
    route!(PUT "/internal/images/{fingerprint}", Internal, Here => images::FilePut),
    route!(DELETE "/internal/images/{fingerprint}", Internal, Here => images::FileDelete),
    route!(POST "/internal/instances/{name}/receive", Internal, Here => instances::Receive),
    route!(POST "/internal/instances/{name}/move", Internal, Here => instances::MoveHome),
    route!(GET "/internal/instances/{name}/archive", Internal, Here => instances::Archive),
];

/// A pattern split into its segments (`None`: a `{…}` parameter).
struct Pattern {
    segments: Vec<Option<&'static str>>,
}

static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    ROUTES
        .iter()
        .map(|r| Pattern {
            segments: r
                .path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|s| if s.starts_with('{') && s.ends_with('}') { None } else { Some(s) })
                .collect(),
        })
        .collect()
});

impl Pattern {
    /// The parameters when `segments` match; literal segments win over parameters.
    fn matches(&self, segments: &[String]) -> Option<Params> {
        if self.segments.len() != segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (want, got) in self.segments.iter().zip(segments) {
            match want {
                Some(lit) if *lit == got.as_str() => {}
                Some(_) => return None,
                None => params.push(got.clone()),
            }
        }
        Some(Params(params))
    }

    fn literals(&self) -> usize {
        self.segments.iter().filter(|s| s.is_some()).count()
    }
}

/// What the table says about a path and method.
pub enum Found {
    Route(&'static Route, Params),
    /// The path exists but not with this method.
    MethodNotAllowed,
    NotFound,
}

/// Finds the route for a request: the most specific pattern that matches the path (the one
/// with the most literal segments), then the entry for the method.
pub fn find(method: &Method, segments: &[String]) -> Found {
    let mut best: Option<usize> = None;
    for (i, p) in PATTERNS.iter().enumerate() {
        if p.matches(segments).is_some() && best.is_none_or(|b| p.literals() > PATTERNS[b].literals()) {
            best = Some(i);
        }
    }
    let Some(best) = best else { return Found::NotFound };
    let path = ROUTES[best].path;
    for (i, r) in ROUTES.iter().enumerate().filter(|(_, r)| r.path == path) {
        if r.method == method
            && let Some(params) = PATTERNS[i].matches(segments)
        {
            return Found::Route(r, params);
        }
    }
    Found::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(path: &str) -> Vec<String> {
        path.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect()
    }

    #[test]
    fn literal_segments_win_and_methods_are_checked() {
        match find(&Method::GET, &segs("/1.0/images/aliases")) {
            Found::Route(r, _) => assert_eq!(r.action, "images::AliasList"),
            _ => panic!("aliases not found"),
        }
        match find(&Method::GET, &segs("/1.0/images/abc123")) {
            Found::Route(r, p) => {
                assert_eq!(r.action, "images::Get");
                assert_eq!(p.at(0), "abc123");
            }
            _ => panic!("image not found"),
        }
        assert!(matches!(find(&Method::POST, &segs("/1.0/images/abc123")), Found::MethodNotAllowed));
        assert!(matches!(find(&Method::GET, &segs("/1.0/nothing")), Found::NotFound));
        match find(&Method::DELETE, &segs("/1.0/instances/c1/snapshots/s1")) {
            Found::Route(r, p) => {
                assert_eq!((r.runs, p.at(0), p.at(1)), (Runs::Instance, "c1", "s1"));
            }
            _ => panic!("snapshot not found"),
        }
    }

    #[test]
    fn every_route_is_listed_once() {
        let mut seen = std::collections::BTreeSet::new();
        for r in ROUTES {
            assert!(seen.insert((r.method.to_string(), r.path)), "{} {} twice", r.method, r.path);
            assert_eq!(r.access == Access::Internal, r.path.starts_with("/internal"), "{}", r.path);
        }
    }
}
