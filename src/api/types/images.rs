//! `/1.0/images` and `/1.0/images/aliases`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ImageAliasEntry {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Image {
    /// What PUT replaces: auto_update, properties, public, expires_at, profiles (first, in
    /// LXD's field order).
    #[serde(flatten)]
    pub put: ImagePut,
    #[serde(default, deserialize_with = "super::nullable")]
    pub aliases: Vec<ImageAliasEntry>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub cached: bool,
    #[serde(default)]
    pub filename: String,
    #[serde(default)]
    pub fingerprint: String,
    #[serde(default)]
    pub size: i64,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub last_used_at: String,
    #[serde(default)]
    pub uploaded_at: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ImagePut {
    #[serde(default)]
    pub auto_update: bool,
    #[serde(default, deserialize_with = "super::nullable")]
    pub properties: BTreeMap<String, String>,
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub expires_at: String,
    #[serde(default, deserialize_with = "super::nullable")]
    pub profiles: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ImageAlias {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub target: String,
    #[serde(rename = "type", default)]
    pub kind: String,
}
