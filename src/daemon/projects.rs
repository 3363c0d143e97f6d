//! Projects as an API resource.

use std::collections::BTreeMap;

use super::profiles::validate_name;
use super::{Daemon, Error, Result};
use crate::api::{Project, ProjectPut, ProjectsPost};
use crate::store::Batch;
use crate::store::global::{profiles as store_profiles, projects as store_projects};

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

impl Daemon {
    async fn project_to_api(&self, p: store_projects::Project) -> Result<Project> {
        let profiles = store_profiles::list(&self.global, Some(&p.name)).await?;
        let used_by = profiles.iter().map(|pr| super::profiles::profile_url(&p.name, &pr.name)).collect();
        Ok(Project { config: p.config, description: p.description, name: p.name, used_by })
    }

    pub async fn projects(&self) -> Result<Vec<Project>> {
        let mut out = Vec::new();
        for p in store_projects::list(&self.global).await? {
            out.push(self.project_to_api(p).await?);
        }
        Ok(out)
    }

    pub async fn project(&self, name: &str) -> Result<Project> {
        let p = store_projects::get(&self.global, name).await?;
        self.project_to_api(p).await
    }

    pub async fn create_project(&self, req: ProjectsPost) -> Result<()> {
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
        store_projects::create(
            &mut b,
            &store_projects::Project { id: 0, name: req.name.clone(), description: req.description, config },
        );
        self.global.apply(&b).await?;
        self.events.lifecycle(&req.name, "project-created", format!("/1.0/projects/{}", req.name), None);
        Ok(())
    }

    pub async fn update_project(&self, name: &str, put: ProjectPut) -> Result<()> {
        validate_config(&put.config)?;
        let current = store_projects::get(&self.global, name).await?;
        for f in FEATURES {
            if current.config.get(*f) != put.config.get(*f) && name == "default" {
                return Err(Error::BadRequest(format!("You can't change the features of the default project (\"{f}\")")));
            }
        }
        let mut b = Batch::new();
        store_projects::update(&mut b, name, &put.description, &put.config);
        self.global.apply(&b).await?;
        self.events.lifecycle(name, "project-updated", format!("/1.0/projects/{name}"), None);
        Ok(())
    }

    pub async fn rename_project(&self, name: &str, new_name: &str) -> Result<()> {
        if name == "default" {
            return Err(Error::Forbidden("The 'default' project cannot be renamed".into()));
        }
        validate_name("project", new_name)?;
        let mut b = Batch::new();
        store_projects::rename(&mut b, name, new_name);
        self.global.apply(&b).await?;
        self.events.lifecycle(new_name, "project-renamed", format!("/1.0/projects/{new_name}"), None);
        Ok(())
    }

    pub async fn delete_project(&self, name: &str) -> Result<()> {
        if name == "default" {
            return Err(Error::Forbidden("The 'default' project cannot be deleted".into()));
        }
        let mut b = Batch::new();
        store_projects::delete(&mut b, name);
        self.global.apply(&b).await?;
        self.events.lifecycle(name, "project-deleted", format!("/1.0/projects/{name}"), None);
        Ok(())
    }
}
