//! Projects: listing, reading (with the ETag of their writable part), creating, updating,
//! renaming and deleting. A write made with an If-Match is guarded inside the database write.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::profiles::profile_url;
use super::validation::validate_name;
use super::{Error, Result};
use crate::api::{Project, ProjectPut, ProjectsPost, etag_of};
use crate::events::EventHub;
use crate::store::global::{GlobalDb, profiles as store_profiles, projects as store};
use crate::store::{Batch, Version};

const FEATURES: &[&str] = &["features.images", "features.profiles", "features.storage.volumes", "features.networks"];

fn validate_config(config: &BTreeMap<String, String>) -> Result<()> {
    for (k, v) in config {
        let ok = if FEATURES.contains(&k.as_str()) {
            matches!(v.as_str(), "true" | "false" | "")
        } else {
            k.starts_with("limits.")
                || k.starts_with("restricted")
                || k.starts_with("user.")
                || k.starts_with("images.")
                || k.starts_with("backups.")
        };
        if !ok {
            return Err(Error::BadRequest(format!("Invalid project configuration key \"{k}\" or value \"{v}\"")));
        }
    }
    Ok(())
}

/// The ETag of a project: its writable part.
fn etag(p: &store::Project) -> String {
    etag_of(&(&p.config, &p.description))
}

/// A PATCH of a project: keys laid over the current ones, and the description if given.
#[derive(Clone, Debug, Default)]
pub struct ProjectPatch {
    pub config: BTreeMap<String, String>,
    pub description: Option<String>,
}

#[derive(Clone)]
pub struct Projects {
    global: GlobalDb,
    events: Arc<EventHub>,
}

impl Projects {
    pub fn new(global: GlobalDb, events: Arc<EventHub>) -> Projects {
        Projects { global, events }
    }

    async fn to_api(&self, p: store::Project) -> Result<Project> {
        let profiles = store_profiles::names(&self.global, &p.name).await?;
        let used_by = profiles.iter().map(|name| profile_url(&p.name, name)).collect();
        Ok(Project { config: p.config, description: p.description, name: p.name, used_by })
    }

    pub async fn list(&self) -> Result<Vec<Project>> {
        let mut out = Vec::new();
        for p in store::list(&self.global).await? {
            out.push(self.to_api(p).await?);
        }
        Ok(out)
    }

    /// A project with its ETag.
    pub async fn get(&self, name: &str) -> Result<(Project, String)> {
        let (p, _) = store::get(&self.global, name).await?;
        let etag = etag(&p);
        Ok((self.to_api(p).await?, etag))
    }

    pub async fn create(&self, req: ProjectsPost) -> Result<()> {
        validate_name("project", &req.name)?;
        if req.name.contains('_') || req.name.contains('\'') || req.name.contains('"') {
            return Err(Error::BadRequest(format!("Invalid project name \"{}\"", req.name)));
        }
        let mut config = req.config;
        for f in FEATURES {
            config.entry((*f).to_string()).or_insert_with(|| if *f == "features.networks" { "false" } else { "true" }.into());
        }
        validate_config(&config)?;
        let mut b = Batch::new();
        store::create(&mut b, &store::Project { id: 0, name: req.name.clone(), description: req.description, config });
        self.global.apply(&b).await?;
        self.events.lifecycle(&req.name, "project-created", format!("/1.0/projects/{}", req.name), None);
        Ok(())
    }

    async fn current(&self, name: &str, if_match: Option<&str>) -> Result<(store::Project, Version)> {
        let (current, version) = store::get(&self.global, name).await?;
        if let Some(given) = if_match {
            let current_etag = etag(&current);
            if current_etag != given {
                return Err(Error::etag_mismatch(&current_etag, given));
            }
        }
        Ok((current, version))
    }

    /// PUT (or, as a [`ProjectPatch`] merged over the current project, PATCH).
    pub async fn update(&self, name: &str, change: ProjectChange, if_match: Option<&str>) -> Result<()> {
        match (&change, if_match) {
            (ProjectChange::Patch(_), None) => super::merge_until_unchanged(|| self.update_once(name, &change, None)).await,
            _ => self.update_once(name, &change, if_match).await,
        }
    }

    async fn update_once(&self, name: &str, change: &ProjectChange, if_match: Option<&str>) -> Result<()> {
        let (current, version) = self.current(name, if_match).await?;
        let (put, guarded) = match change {
            ProjectChange::Replace(put) => (put.clone(), if_match.is_some()),
            ProjectChange::Patch(patch) => {
                let mut config = current.config.clone();
                config.extend(patch.config.clone());
                let description = patch.description.clone().unwrap_or_else(|| current.description.clone());
                // A merge is only right over what was read: it is always guarded.
                (ProjectPut { config, description }, true)
            }
        };
        validate_config(&put.config)?;
        for f in FEATURES {
            if current.config.get(*f) != put.config.get(*f) && name == "default" {
                return Err(Error::BadRequest(format!("You can't change the features of the default project (\"{f}\")")));
            }
        }
        let mut b = Batch::new();
        if guarded {
            b.require_unchanged(&version, "ETag doesn't match: the project changed meanwhile");
        }
        store::update(&mut b, name, &put.description, &put.config);
        self.global.apply(&b).await?;
        self.events.lifecycle(name, "project-updated", format!("/1.0/projects/{name}"), None);
        Ok(())
    }

    pub async fn rename(&self, name: &str, new_name: &str) -> Result<()> {
        if name == "default" {
            return Err(Error::Forbidden("The 'default' project cannot be renamed".into()));
        }
        validate_name("project", new_name)?;
        let mut b = Batch::new();
        store::rename(&mut b, name, new_name);
        self.global.apply(&b).await?;
        self.events.lifecycle(new_name, "project-renamed", format!("/1.0/projects/{new_name}"), None);
        Ok(())
    }

    pub async fn delete(&self, name: &str) -> Result<()> {
        if name == "default" {
            return Err(Error::Forbidden("The 'default' project cannot be deleted".into()));
        }
        let mut b = Batch::new();
        store::delete(&mut b, name);
        self.global.apply(&b).await?;
        self.events.lifecycle(name, "project-deleted", format!("/1.0/projects/{name}"), None);
        Ok(())
    }
}

/// What a PUT or PATCH of a project asks for.
pub enum ProjectChange {
    Replace(ProjectPut),
    Patch(ProjectPatch),
}
