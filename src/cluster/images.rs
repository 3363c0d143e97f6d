//! Image files across members, as `cluster.images_minimal_replica` asks: after an import the
//! importing member pushes the file to online members that lack it until enough hold it; a
//! member creating a container from an image it lacks fetches it from a holder; a deleted
//! image's file is removed from every member. `images_nodes` records who holds what.

use std::sync::Arc;

use super::forward;
use crate::daemon::{Daemon, Error, Result};
use crate::store::Batch;
use crate::store::global::{self, images as store};

/// How many members should hold each image (-1: all).
async fn wanted_copies(d: &Daemon, members: usize) -> Result<usize> {
    let cfg = global::config::get_all(&d.global).await?;
    let n: i64 = cfg.get("cluster.images_minimal_replica").and_then(|v| v.parse().ok()).unwrap_or(3);
    Ok(if n < 0 { members } else { n as usize })
}

/// Online members other than this one: (id, address).
async fn online_members(d: &Daemon) -> Result<Vec<(i64, String)>> {
    let online = forward::online_others(d).await?;
    Ok(global::nodes::list(&d.global)
        .await?
        .into_iter()
        .filter(|n| online.contains(&n.address))
        .map(|n| (n.id, n.address))
        .collect())
}

/// Pushes this member's copy of `fp` to online members lacking it until the wanted number of
/// online members hold it.
pub async fn replicate(d: &Arc<Daemon>, project: &str, fp: &str) -> Result<()> {
    let image = store::get(&d.global, project, fp).await?;
    let members = global::nodes::list(&d.global).await?.len();
    let wanted = wanted_copies(d, members).await?;
    let others = online_members(d).await?;
    let self_id = d.node_id();
    let mut have = image.nodes.iter().filter(|n| **n == self_id || others.iter().any(|(id, _)| id == *n)).count();
    if have == 0 || have >= wanted || !crate::image::has(&d.paths.dir, fp) {
        return Ok(());
    }
    let data = tokio::fs::read(crate::image::path(&d.paths.dir, fp)).await.map_err(|e| Error::Internal(e.to_string()))?;
    for (id, address) in others.iter().filter(|(id, _)| !image.nodes.contains(id)) {
        if have >= wanted {
            break;
        }
        let path = format!("/internal/images/{fp}?project={project}");
        let (status, _, body) = forward::send(d, address, "PUT", &path, Some(data.clone()), &[]).await?;
        if status != 200 {
            return Err(Error::Internal(format!(
                "member {address} (id {id}) refused the image: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        have += 1;
    }
    Ok(())
}

/// Stores a copy pushed by another member and records this member as a holder.
pub async fn receive(d: &Daemon, project: &str, fp: &str, data: &[u8]) -> Result<()> {
    let lxd_dir = d.paths.dir.clone();
    let (fp_s, data) = (fp.to_string(), data.to_vec());
    tokio::task::spawn_blocking(move || crate::image::store_copy(&lxd_dir, &fp_s, &data))
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    let mut b = Batch::new();
    store::add_node(&mut b, project, fp, d.node_id());
    d.global.apply(&b).await?;
    Ok(())
}

/// Fetches `fp` from an online member that holds it.
pub async fn fetch(d: &Daemon, project: &str, fp: &str) -> Result<()> {
    let image = store::get(&d.global, project, fp).await?;
    for (id, address) in online_members(d).await? {
        if !image.nodes.contains(&id) {
            continue;
        }
        if let Ok((200, _, body)) = forward::send(d, &address, "GET", &format!("/internal/images/{fp}"), None, &[]).await {
            return receive(d, project, fp, &body).await;
        }
    }
    Err(Error::Unavailable("Image not available on any online node".into()))
}

/// Every other member must answer before an image is deleted cluster-wide.
pub async fn check_all_reachable(d: &Daemon) -> Result<()> {
    let online = forward::online_others(d).await?;
    for n in global::nodes::list(&d.global).await? {
        if n.id != d.node_id() && n.state != global::nodes::STATE_PENDING && !online.contains(&n.address) {
            return Err(Error::Unavailable(format!("peer node {} is down", n.address)));
        }
    }
    Ok(())
}

pub async fn delete_elsewhere(d: &Daemon, fp: &str) {
    let Ok(others) = forward::online_others(d).await else { return };
    for address in others {
        let _ = forward::send(d, &address, "DELETE", &format!("/internal/images/{fp}"), None, &[]).await;
    }
}

/// Brings every image up to its wanted number of copies (after a join or a removal).
pub async fn replicate_all(d: &Arc<Daemon>) {
    let Ok(all) = store::holders(&d.global).await else { return };
    for (project, fp, nodes) in all {
        if nodes.contains(&d.node_id())
            && let Err(e) = replicate(d, &project, &fp).await
        {
            tracing::warn!(image = %fp, error = %e, "Failed syncing image between members");
        }
    }
}

/// After joining: take a copy of every image that has fewer holders than wanted.
pub async fn sync_after_join(d: &Arc<Daemon>) {
    let Ok(all) = store::holders(&d.global).await else { return };
    let Ok(members) = global::nodes::list(&d.global).await else { return };
    let Ok(wanted) = wanted_copies(d, members.len()).await else { return };
    let online: Vec<i64> = online_members(d).await.unwrap_or_default().into_iter().map(|(id, _)| id).collect();
    for (project, fp, nodes) in all {
        let have = nodes.iter().filter(|n| online.contains(n)).count();
        if !nodes.contains(&d.node_id())
            && have < wanted
            && let Err(e) = fetch(d, &project, &fp).await
        {
            tracing::warn!(image = %fp, error = %e, "Failed to copy an image after joining");
        }
    }
}

/// After `cluster.images_minimal_replica` changed: images short of copies get them, this member
/// taking one first when it has none (a holder then pushes the rest).
pub async fn rebalance(d: &Arc<Daemon>) {
    sync_after_join(d).await;
    replicate_all(d).await;
}
