//! The offline admin tools, run by `lxd cluster …` on a member whose daemon is stopped: which
//! replicas exist and how far their logs reach (`list-database`), quorum-loss recovery (this
//! member becomes the only voter; every row is kept; a backup is written first), and the raft
//! member list as YAML (`show`, `edit`, e.g. to move every member to new addresses). Address
//! changes for the replicated `nodes` table are queued in `database/patch.global.sql` and
//! applied through the cluster when the member starts again.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::runtime::Runtime;
use super::{Error, ROLE_SPARE, ROLE_STANDBY, ROLE_VOTER, Result};
use crate::config::{self, address::DEFAULT_PORT};
use crate::paths::{Paths, running_pid};
use crate::raft::offline::{self, ReplicaFacts};
use crate::store::local::{LocalDb, RaftNode};

pub const GLOBAL_PATCH: &str = "patch.global.sql";

fn ensure_stopped(paths: &Paths) -> Result<()> {
    match running_pid(paths) {
        Some(pid) => Err(Error::BadRequest(format!("The LXD daemon is running, please stop it first (pid {pid})."))),
        None => Ok(()),
    }
}

async fn open_local(paths: &Paths) -> Result<LocalDb> {
    if !paths.local_db().exists() {
        return Err(Error::NotFound(format!("Failed to open local database: {} does not exist", paths.local_db().display())));
    }
    LocalDb::open(&paths.local_db()).await.map_err(|e| Error::Internal(format!("Failed to open local database: {e}")))
}

pub fn role_name(role: i64) -> &'static str {
    match role {
        ROLE_VOTER => "voter",
        ROLE_STANDBY => "stand-by",
        _ => "spare",
    }
}

fn role_number(name: &str) -> Option<i64> {
    match name {
        "voter" => Some(ROLE_VOTER),
        "stand-by" => Some(ROLE_STANDBY),
        "spare" => Some(ROLE_SPARE),
        _ => None,
    }
}

/// A database member as `list-database` shows it.
pub struct DatabaseMember {
    pub node: RaftNode,
    /// (last log index, term, as of) when known.
    pub position: Option<(u64, u64, String)>,
    pub own: bool,
}

/// The replicas this member knows, with how far each log reached when last heard of; this
/// member's own figures come from its files when the daemon is stopped.
pub async fn list_database(paths: &Paths) -> Result<Vec<DatabaseMember>> {
    let local = open_local(paths).await?;
    let own_address = config::cluster_address(&local.config().await?).ok();
    let positions = local.replica_positions().await?;
    let stopped = running_pid(paths).is_none();
    let mut out = Vec::new();
    for node in local.raft_nodes().await?.into_iter().filter(|n| n.role != ROLE_SPARE) {
        let own = Some(&node.address) == own_address.as_ref();
        let mut position = positions.iter().find(|p| p.id == node.id).map(|p| (p.last_index, p.term, p.seen_at.clone()));
        if own
            && stopped
            && let Ok(facts) = offline::inspect(&paths.global_dir()).await
        {
            position = Some((facts.last_index, facts.last_term, "its files".into()));
        }
        out.push(DatabaseMember { node, position, own });
    }
    local.database().close().await;
    Ok(out)
}

/// What quorum-loss recovery will do.
pub struct RecoveryPlan {
    pub own: RaftNode,
    pub dropped: Vec<RaftNode>,
    pub facts: ReplicaFacts,
    pub backup: PathBuf,
}

pub async fn plan_recovery(paths: &Paths) -> Result<RecoveryPlan> {
    ensure_stopped(paths)?;
    let local = open_local(paths).await?;
    let member = local.config().await?;
    if member.get("cluster.https_address").is_none_or(|a| a.is_empty()) {
        return Err(Error::BadRequest("This LXD instance is not clustered".into()));
    }
    let address = config::cluster_address(&member)?;
    let nodes = local.raft_nodes().await?;
    local.database().close().await;
    let own = nodes.iter().find(|n| n.address == address).cloned();
    let own = match own {
        Some(n) if n.role != ROLE_SPARE => n,
        Some(_) => {
            return Err(Error::BadRequest(
                "This LXD instance has no database role (it is a spare and holds no copy of the database)".into(),
            ));
        }
        None => return Err(Error::BadRequest("This LXD instance has no database role".into())),
    };
    let facts = offline::inspect(&paths.global_dir()).await?;
    let dropped = nodes.into_iter().filter(|n| n.id != own.id && n.role != ROLE_SPARE).collect();
    let stamp = crate::util::time::rfc3339(crate::util::time::now_nanos()).replace(':', "");
    let backup = paths.dir.join(format!("database.bak-{stamp}"));
    Ok(RecoveryPlan { own, dropped, facts, backup })
}

/// Backs the database directory up: each SQLite file as a consistent copy of its own (its
/// write-ahead sidecars are folded in, never copied: they come and go with connections), any
/// other file as it is.
fn backup_tree<'a>(from: &'a Path, to: &'a Path) -> crate::util::BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        let io = |path: &Path, e: std::io::Error| Error::Internal(format!("{}: {e}", path.display()));
        std::fs::create_dir_all(to).map_err(|e| io(to, e))?;
        for entry in std::fs::read_dir(from).map_err(|e| io(from, e))? {
            let entry = entry.map_err(|e| io(from, e))?;
            let (source, target) = (entry.path(), to.join(entry.file_name()));
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().map_err(|e| io(&source, e))?.is_dir() {
                backup_tree(&source, &target).await?;
            } else if ["-wal", "-shm", "-journal"].iter().any(|s| name.ends_with(s)) {
                continue;
            } else if name.ends_with(".db") {
                crate::store::db::backup_file(&source, &target).await?;
            } else {
                std::fs::copy(&source, &target).map_err(|e| io(&source, e))?;
            }
        }
        Ok(())
    })
}

/// Backs `database/` up, then makes this member the only voter. Returns how many pending
/// membership changes in the log were emptied.
pub async fn recover(paths: &Paths, plan: &RecoveryPlan) -> Result<usize> {
    ensure_stopped(paths)?;
    backup_tree(&paths.database(), &plan.backup).await.map_err(|e| {
        Error::Internal(format!("Failed to back up {} to {}: {e}", paths.database().display(), plan.backup.display()))
    })?;
    let neutralised = offline::rewrite_membership(&paths.global_dir(), vec![plan.own.id], vec![]).await?;
    let local = open_local(paths).await?;
    local.replace_raft_nodes(&[RaftNode { role: ROLE_VOTER, ..plan.own.clone() }]).await?;
    local.database().close().await;
    Ok(neutralised)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct MemberYaml {
    id: u64,
    #[serde(default)]
    name: String,
    address: String,
    role: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct MembersYaml {
    members: Vec<MemberYaml>,
}

/// The raft member list as `lxd cluster show` prints it.
pub async fn show(paths: &Paths) -> Result<String> {
    let local = open_local(paths).await?;
    let nodes = local.raft_nodes().await?;
    local.database().close().await;
    let mut out = String::new();
    if !nodes.is_empty() {
        let latest = match offline::inspect(&paths.global_dir()).await {
            Ok(f) if running_pid(paths).is_none() => format!("{} (term {})", f.last_index, f.last_term),
            _ => "unknown (the daemon is running)".into(),
        };
        out.push_str(&format!("# Latest raft log index: {latest}\n\n"));
    }
    let doc = MembersYaml {
        members: nodes
            .into_iter()
            .map(|n| MemberYaml { id: n.id, name: n.name, address: n.address, role: role_name(n.role).into() })
            .collect(),
    };
    out.push_str(&serde_yaml::to_string(&doc).map_err(|e| Error::Internal(format!("rendering the member list: {e}")))?);
    Ok(out)
}

/// Rewrites the raft member list from `text` (YAML as `show` prints it). Everything is checked
/// before anything is written.
pub async fn edit(paths: &Paths, text: &str) -> Result<()> {
    ensure_stopped(paths)?;
    let local = open_local(paths).await?;
    let member = local.config().await?;
    let Some(own_address) = member.get("cluster.https_address").filter(|a| !a.is_empty()).cloned() else {
        return Err(Error::BadRequest(
            "Can't edit cluster configuration as server isn't clustered (missing \"cluster.https_address\" config)".into(),
        ));
    };
    let own_address = config::parse_address(&own_address, DEFAULT_PORT)?;
    let doc: MembersYaml = serde_yaml::from_str(text).map_err(|e| Error::BadRequest(format!("Invalid YAML: {e}")))?;
    let current = local.raft_nodes().await?;
    if doc.members.len() < current.len() {
        return Err(Error::BadRequest("Removing cluster members is not supported".into()));
    }
    if doc.members.len() > current.len() {
        return Err(Error::BadRequest("Adding cluster members is not supported".into()));
    }
    let mut edited = Vec::new();
    for (new, old) in doc.members.iter().zip(&current) {
        if new.id != old.id {
            return Err(Error::BadRequest("Changing cluster member ID is not supported".into()));
        }
        if !new.name.is_empty() && !old.name.is_empty() && new.name != old.name {
            return Err(Error::BadRequest("Changing cluster member name is not supported".into()));
        }
        let role = role_number(&new.role).ok_or_else(|| Error::BadRequest(format!("Invalid role \"{}\"", new.role)))?;
        if old.role == ROLE_SPARE && role == ROLE_VOTER {
            return Err(Error::BadRequest("A \"spare\" cluster member cannot become a \"voter\"".into()));
        }
        let address = config::parse_address(&new.address, DEFAULT_PORT)?;
        if config::is_wildcard(&address) {
            return Err(Error::BadRequest(format!("Wildcard addresses aren't allowed: {}", new.address)));
        }
        edited.push(RaftNode { id: old.id, address, role, name: old.name.clone() });
    }
    let voters = edited.iter().filter(|n| n.role == ROLE_VOTER).count();
    if edited.len() > 2 && voters < 2 {
        return Err(Error::BadRequest("Number of \"voter\" must be 2 or more".into()));
    }
    if voters < 1 {
        return Err(Error::BadRequest("At least one member must be a \"voter\"".into()));
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = edited.iter().find(|n| !seen.insert(n.address.clone())) {
        return Err(Error::BadRequest(format!("Address {} is used by more than one member", dup.address)));
    }
    let own = current
        .iter()
        .find(|n| n.address == own_address)
        .ok_or_else(|| Error::BadRequest("This member's address is not in its raft configuration".into()))?;
    let own_new = edited.iter().find(|n| n.id == own.id).cloned().unwrap_or_else(|| own.clone());

    // Checked; now written.
    let roles_changed = edited.iter().zip(&current).any(|(a, b)| a.role != b.role);
    if roles_changed && own.role != ROLE_SPARE {
        let voters_ids = edited.iter().filter(|n| n.role == ROLE_VOTER).map(|n| n.id).collect();
        let standbys = edited.iter().filter(|n| n.role == ROLE_STANDBY).map(|n| n.id).collect();
        offline::rewrite_membership(&paths.global_dir(), voters_ids, standbys).await?;
    }
    if own_new.address != own.address {
        let mut changes = std::collections::BTreeMap::new();
        changes.insert("cluster.https_address".to_string(), Some(own_new.address.clone()));
        local.update_config(&changes).await?;
    }
    local.replace_raft_nodes(&edited).await?;
    local.database().close().await;
    let mut patch = String::new();
    for (new, old) in edited.iter().zip(&current) {
        if new.address != old.address {
            patch.push_str(&crate::store::global::nodes::set_address_sql(new.id as i64, &new.address));
        }
    }
    if !patch.is_empty() {
        use std::io::Write;
        let path = paths.database().join(GLOBAL_PATCH);
        let mut f =
            std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(Error::io("cannot write", &path))?;
        f.write_all(patch.as_bytes()).map_err(Error::io("cannot write", &path))?;
    }
    Ok(())
}

/// At start: applies queued `nodes` address changes through the cluster once it can write.
pub fn spawn_global_patch(rt: Arc<Runtime>) {
    let path = rt.env.paths.database().join(GLOBAL_PATCH);
    let Ok(text) = std::fs::read_to_string(&path) else { return };
    rt.patch_pending.store(true, std::sync::atomic::Ordering::SeqCst);
    tokio::spawn(async move {
        let b = crate::store::sql::patch_batch(&text);
        loop {
            if rt.is_stopped() {
                return;
            }
            match rt.env.global.apply(&b).await {
                Ok(_) => break,
                Err(e) => tracing::debug!(error = %e, "queued database patch not applied yet"),
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        if let Err(e) = std::fs::rename(&path, path.with_extension("sql.applied")) {
            tracing::warn!(error = %e, "the applied patch file could not be set aside");
        }
        rt.patch_pending.store(false, std::sync::atomic::Ordering::SeqCst);
        tracing::info!("applied the queued database patch");
    });
}
