//! `/1.0/profiles`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub type DevicesMap = BTreeMap<String, BTreeMap<String, String>>;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Profile {
    #[serde(default, deserialize_with = "super::nullable")]
    pub config: BTreeMap<String, String>,
    #[serde(default)]
    pub description: String,
    #[serde(default, deserialize_with = "super::nullable")]
    pub devices: DevicesMap,
    #[serde(default)]
    pub name: String,
    #[serde(default, deserialize_with = "super::nullable")]
    pub used_by: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ProfilePut {
    #[serde(default, deserialize_with = "super::nullable")]
    pub config: BTreeMap<String, String>,
    #[serde(default)]
    pub description: String,
    #[serde(default, deserialize_with = "super::nullable")]
    pub devices: DevicesMap,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProfilesPost {
    #[serde(default)]
    pub name: String,
    #[serde(default, deserialize_with = "super::nullable")]
    pub config: BTreeMap<String, String>,
    #[serde(default)]
    pub description: String,
    #[serde(default, deserialize_with = "super::nullable")]
    pub devices: DevicesMap,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NamePost {
    #[serde(default)]
    pub name: String,
}
