//! Image files across members, as `cluster.images_minimal_replica` asks: after an import the
//! importing member pushes the file to online members that lack it until enough hold it; a
//! member creating a container from an image it lacks fetches it from a holder; a deleted
//! image's file is removed from every member. `images_nodes` records who holds what.

use super::Images;
use crate::cluster::{Forwarded, Peer};
use crate::services::{Error, Result};
use crate::store::Batch;
use crate::store::global::{self, images as store};

impl Images {
    /// How many members should hold each image (-1: all).
    async fn wanted_copies(&self, members: usize) -> Result<usize> {
        let cfg = global::config::get_all(&self.global).await?;
        let n: i64 = cfg.get("cluster.images_minimal_replica").and_then(|v| v.parse().ok()).unwrap_or(3);
        Ok(if n < 0 { members } else { n as usize })
    }

    /// Online members other than this one.
    async fn online_peers(&self) -> Result<Vec<Peer>> {
        Ok(self.cluster.clustered()?.online_others().await?)
    }

    /// Pushes this member's copy of `fp` to online members lacking it until the wanted number
    /// of online members hold it.
    pub async fn replicate(&self, project: &str, fp: &str) -> Result<()> {
        let rt = self.cluster.clustered()?;
        let (image, _) = store::get(&self.global, project, fp).await?;
        let members = rt.peers().await?.len();
        let wanted = self.wanted_copies(members).await?;
        let others = self.online_peers().await?;
        let self_id = self.cluster.node_id();
        let mut have = image.nodes.iter().filter(|n| **n == self_id || others.iter().any(|p| p.id == **n)).count();
        if have == 0 || have >= wanted || !crate::image::has(&self.paths.dir, fp) {
            return Ok(());
        }
        let path = crate::image::path(&self.paths.dir, fp);
        let data = tokio::fs::read(&path).await.map_err(Error::io("reading", &path))?;
        for peer in others.iter().filter(|p| !image.nodes.contains(&p.id)) {
            if have >= wanted {
                break;
            }
            let url = format!("/internal/images/{fp}?project={project}");
            let reply = rt.send(&peer.address, "PUT", &url, Some(data.clone()), &[]).await?;
            if reply.status != 200 {
                return Err(Error::Internal(format!(
                    "member {} (id {}) refused the image: {}",
                    peer.address,
                    peer.id,
                    String::from_utf8_lossy(&reply.body)
                )));
            }
            have += 1;
        }
        Ok(())
    }

    /// Stores a copy pushed by another member and records this member as a holder.
    pub async fn receive(&self, project: &str, fp: &str, data: bytes::Bytes) -> Result<()> {
        if !crate::image::valid_fingerprint(fp) {
            return Err(Error::BadRequest("Invalid image fingerprint".into()));
        }
        let lxd_dir = self.paths.dir.clone();
        let fp_s = fp.to_string();
        tokio::task::spawn_blocking(move || crate::image::store_copy(&lxd_dir, &fp_s, &data)).await??;
        let mut b = Batch::new();
        store::add_node(&mut b, project, fp, self.cluster.node_id());
        self.global.apply(&b).await?;
        Ok(())
    }

    /// Fetches `fp` from an online member that holds it.
    pub async fn fetch(&self, project: &str, fp: &str) -> Result<()> {
        let rt = self.cluster.clustered()?;
        let (image, _) = store::get(&self.global, project, fp).await?;
        for peer in self.online_peers().await?.into_iter().filter(|p| image.nodes.contains(&p.id)) {
            if let Ok(Forwarded { status: 200, body, .. }) =
                rt.send(&peer.address, "GET", &format!("/internal/images/{fp}"), None, &[]).await
            {
                return self.receive(project, fp, body).await;
            }
        }
        Err(Error::Unavailable("Image not available on any online node".into()))
    }

    /// Every other member must answer before an image is deleted cluster-wide.
    pub async fn check_all_reachable(&self) -> Result<()> {
        let rt = self.cluster.clustered()?;
        let online = self.online_peers().await?;
        for peer in rt.peers().await? {
            if peer.id as u64 != rt.id && peer.admitted() && !online.iter().any(|p| p.id == peer.id) {
                return Err(Error::Unavailable(format!("peer node {} is down", peer.address)));
            }
        }
        Ok(())
    }

    pub async fn delete_elsewhere(&self, fp: &str) {
        let Some(rt) = self.cluster.runtime() else { return };
        let Ok(others) = self.online_peers().await else { return };
        for peer in others {
            if let Err(e) = rt.send(&peer.address, "DELETE", &format!("/internal/images/{fp}"), None, &[]).await {
                tracing::warn!(member = %peer.name, error = %e, "cannot remove an image's file on a member");
            }
        }
    }

    /// Brings every image up to its wanted number of copies (after a join or a removal).
    pub async fn replicate_all(&self) {
        let Ok(all) = store::holders(&self.global).await else { return };
        for (project, fp, nodes) in all {
            if nodes.contains(&self.cluster.node_id())
                && let Err(e) = self.replicate(&project, &fp).await
            {
                tracing::warn!(image = %fp, error = %e, "Failed syncing image between members");
            }
        }
    }

    /// After joining: take a copy of every image that has fewer holders than wanted.
    pub async fn sync_after_join(&self) {
        let Ok(all) = store::holders(&self.global).await else { return };
        let Ok(members) = global::nodes::list(&self.global).await else { return };
        let Ok(wanted) = self.wanted_copies(members.len()).await else { return };
        let online: Vec<i64> = self.online_peers().await.unwrap_or_default().into_iter().map(|p| p.id).collect();
        for (project, fp, nodes) in all {
            let have = nodes.iter().filter(|n| online.contains(n)).count();
            if !nodes.contains(&self.cluster.node_id())
                && have < wanted
                && let Err(e) = self.fetch(&project, &fp).await
            {
                tracing::warn!(image = %fp, error = %e, "Failed to copy an image after joining");
            }
        }
    }

    /// After `cluster.images_minimal_replica` changed: images short of copies get them, this
    /// member taking one first when it has none (a holder then pushes the rest).
    pub async fn rebalance(&self) {
        self.sync_after_join().await;
        self.replicate_all().await;
    }
}
