//! `/1.0/projects`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Project {
    #[serde(default, deserialize_with = "super::nullable")]
    pub config: BTreeMap<String, String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, deserialize_with = "super::nullable")]
    pub used_by: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProjectPut {
    #[serde(default, deserialize_with = "super::nullable")]
    pub config: BTreeMap<String, String>,
    #[serde(default)]
    pub description: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProjectsPost {
    #[serde(default)]
    pub name: String,
    #[serde(default, deserialize_with = "super::nullable")]
    pub config: BTreeMap<String, String>,
    #[serde(default)]
    pub description: String,
}
