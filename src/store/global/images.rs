//! Images (`images`, `images_properties`, `images_aliases`) and which members hold their files
//! (`images_nodes`), scoped by project.

use std::collections::BTreeMap;

use super::GlobalDb;
use crate::store::db::{int, text, version_of};
use crate::store::{Batch, Result, Rows, Stmt, StoreError, Value, Version};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Image {
    pub id: i64,
    pub project: String,
    pub fingerprint: String,
    pub filename: String,
    pub size: i64,
    pub public: bool,
    pub auto_update: bool,
    pub architecture: String,
    pub created_at: String,
    pub uploaded_at: String,
    pub last_used_at: String,
    pub properties: BTreeMap<String, String>,
    /// (name, description)
    pub aliases: Vec<(String, String)>,
    /// Member ids holding the file.
    pub nodes: Vec<i64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Alias {
    pub name: String,
    pub description: String,
    pub target: String,
}

const ID_SQL: &str =
    "(SELECT im.id FROM images im JOIN projects p ON p.id = im.project_id WHERE p.name = ? AND im.fingerprint = ?)";

/// The reads of a project's images (only the one with fingerprint `fp` when given).
fn list_stmts(project: &str, fp: Option<&str>) -> [Stmt; 4] {
    let (filter, params): (&str, Vec<Value>) = match fp {
        Some(fp) => (" AND im.fingerprint = ?", vec![project.into(), fp.into()]),
        None => ("", vec![project.into()]),
    };
    let scoped = format!("SELECT im.id FROM images im JOIN projects p ON p.id = im.project_id WHERE p.name = ?{filter}");
    [
        Stmt::new(
            format!(
                "SELECT im.id, p.name, im.fingerprint, im.filename, im.size, im.public, im.auto_update, im.architecture,
                    COALESCE(im.creation_date, ''), im.upload_date, COALESCE(im.last_use_date, '')
             FROM images im JOIN projects p ON p.id = im.project_id WHERE p.name = ?{filter} ORDER BY im.fingerprint"
            ),
            params.clone(),
        ),
        Stmt::new(
            format!("SELECT image_id, key, value FROM images_properties WHERE image_id IN ({scoped}) ORDER BY image_id, key"),
            params.clone(),
        ),
        Stmt::new(
            format!("SELECT image_id, name, description FROM images_aliases WHERE image_id IN ({scoped}) ORDER BY name"),
            params.clone(),
        ),
        Stmt::new(format!("SELECT image_id, node_id FROM images_nodes WHERE image_id IN ({scoped}) ORDER BY node_id"), params),
    ]
}

pub async fn list(db: &GlobalDb, project: &str) -> Result<Vec<Image>> {
    let [rows, props, aliases, nodes] = db.query_many(list_stmts(project, None)).await?;
    Ok(assemble(&rows, &props, &aliases, &nodes))
}

/// Whether the project has an image with exactly this fingerprint.
pub async fn exists(db: &GlobalDb, project: &str, fp: &str) -> Result<bool> {
    let rows =
        db.query(&Stmt::new(format!("SELECT COUNT(*) FROM images WHERE id = {ID_SQL}"), vec![project.into(), fp.into()])).await?;
    Ok(rows.rows.first().map(|r| int(r, 0)).unwrap_or(0) > 0)
}

fn assemble(rows: &Rows, props: &Rows, aliases: &Rows, nodes: &Rows) -> Vec<Image> {
    let mut out: Vec<Image> = rows
        .rows
        .iter()
        .map(|r| Image {
            id: int(r, 0),
            project: text(r, 1),
            fingerprint: text(r, 2),
            filename: text(r, 3),
            size: int(r, 4),
            public: int(r, 5) != 0,
            auto_update: int(r, 6) != 0,
            architecture: text(r, 7),
            created_at: text(r, 8),
            uploaded_at: text(r, 9),
            last_used_at: text(r, 10),
            ..Default::default()
        })
        .collect();
    let index: BTreeMap<i64, usize> = out.iter().enumerate().map(|(i, x)| (x.id, i)).collect();
    for r in &props.rows {
        if let Some(&i) = index.get(&int(r, 0)) {
            out[i].properties.insert(text(r, 1), text(r, 2));
        }
    }
    for r in &aliases.rows {
        if let Some(&i) = index.get(&int(r, 0)) {
            out[i].aliases.push((text(r, 1), text(r, 2)));
        }
    }
    for r in &nodes.rows {
        if let Some(&i) = index.get(&int(r, 0)) {
            out[i].nodes.push(int(r, 1));
        }
    }
    out
}

/// The image whose fingerprint is `fp` or starts with it (a unique prefix), with the version a
/// guarded write of its editable part needs (both from one read point).
pub async fn get(db: &GlobalDb, project: &str, fp: &str) -> Result<(Image, Version)> {
    if let Some(found) = get_exact(db, project, fp).await? {
        return Ok(found);
    }
    let all = list(db, project).await?;
    let mut matches = all.into_iter().filter(|i| !fp.is_empty() && i.fingerprint.starts_with(fp));
    let fingerprint = match (matches.next(), matches.next()) {
        (Some(one), None) => one.fingerprint,
        (Some(_), Some(_)) => return Err(StoreError::Conflict(format!("More than one image matches \"{fp}\""))),
        _ => return Err(StoreError::NotFound("Image not found".into())),
    };
    get_exact(db, project, &fingerprint).await?.ok_or_else(|| StoreError::NotFound("Image not found".into()))
}

async fn get_exact(db: &GlobalDb, project: &str, fingerprint: &str) -> Result<Option<(Image, Version)>> {
    let key = || vec![Value::from(project), Value::from(fingerprint)];
    let version_stmts = vec![
        Stmt::new(format!("SELECT public, auto_update FROM images WHERE id = {ID_SQL}"), key()),
        Stmt::new(format!("SELECT key, value FROM images_properties WHERE image_id = {ID_SQL} ORDER BY key"), key()),
    ];
    let mut stmts: Vec<Stmt> = list_stmts(project, Some(fingerprint)).into_iter().collect();
    stmts.extend(version_stmts.iter().cloned());
    let sets = db.query_all(&stmts).await?;
    Ok(assemble(&sets[0], &sets[1], &sets[2], &sets[3]).pop().map(|image| (image, version_of(version_stmts, &sets[4..]))))
}

/// Every (project, fingerprint) with the member ids holding its file.
pub async fn holders(db: &GlobalDb) -> Result<Vec<(String, String, Vec<i64>)>> {
    let rows = db
        .query(&Stmt::new(
            "SELECT p.name, im.fingerprint, n.node_id FROM images im JOIN projects p ON p.id = im.project_id
             LEFT JOIN images_nodes n ON n.image_id = im.id ORDER BY p.name, im.fingerprint",
            vec![],
        ))
        .await?;
    let mut out: Vec<(String, String, Vec<i64>)> = Vec::new();
    for r in &rows.rows {
        let (project, fp) = (text(r, 0), text(r, 1));
        if out.last().is_none_or(|(p, f, _)| *p != project || *f != fp) {
            out.push((project, fp, Vec::new()));
        }
        if !matches!(r.get(2), Some(Value::Null) | None)
            && let Some(last) = out.last_mut()
        {
            last.2.push(int(r, 2));
        }
    }
    Ok(out)
}

pub fn create(b: &mut Batch, i: &Image, node_id: i64) {
    b.require_none(
        format!("SELECT COUNT(*) FROM images WHERE id = {ID_SQL}"),
        vec![(&i.project).into(), (&i.fingerprint).into()],
        "Image with same fingerprint already exists",
    );
    b.push(
        "INSERT INTO images (fingerprint, filename, size, public, architecture, creation_date, upload_date, auto_update, project_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, (SELECT id FROM projects WHERE name = ?))",
        vec![
            (&i.fingerprint).into(),
            (&i.filename).into(),
            i.size.into(),
            i.public.into(),
            (&i.architecture).into(),
            (&i.created_at).into(),
            (&i.uploaded_at).into(),
            i.auto_update.into(),
            (&i.project).into(),
        ],
    );
    for (k, v) in &i.properties {
        b.push(
            format!("INSERT INTO images_properties (image_id, key, value) VALUES ({ID_SQL}, ?, ?)"),
            vec![(&i.project).into(), (&i.fingerprint).into(), k.into(), v.into()],
        );
    }
    add_node(b, &i.project, &i.fingerprint, node_id);
}

/// Replaces the editable part of an image: public, auto_update and properties.
pub fn update(b: &mut Batch, project: &str, fp: &str, public: bool, auto_update: bool, properties: &BTreeMap<String, String>) {
    b.require_some(
        format!("SELECT COUNT(*) FROM images WHERE id = {ID_SQL}"),
        vec![project.into(), fp.into()],
        "Image not found",
    );
    b.push(
        format!("UPDATE images SET public = ?, auto_update = ? WHERE id = {ID_SQL}"),
        vec![public.into(), auto_update.into(), project.into(), fp.into()],
    );
    b.push(format!("DELETE FROM images_properties WHERE image_id = {ID_SQL}"), vec![project.into(), fp.into()]);
    for (k, v) in properties {
        b.push(
            format!("INSERT INTO images_properties (image_id, key, value) VALUES ({ID_SQL}, ?, ?)"),
            vec![project.into(), fp.into(), k.into(), v.into()],
        );
    }
}

pub fn add_node(b: &mut Batch, project: &str, fp: &str, node_id: i64) {
    b.push(
        format!("INSERT OR IGNORE INTO images_nodes (image_id, node_id) SELECT {ID_SQL}, ? WHERE {ID_SQL} IS NOT NULL"),
        vec![project.into(), fp.into(), node_id.into(), project.into(), fp.into()],
    );
}

pub fn touch(b: &mut Batch, project: &str, fp: &str, now: &str) {
    b.push(format!("UPDATE images SET last_use_date = ? WHERE id = {ID_SQL}"), vec![now.into(), project.into(), fp.into()]);
}

pub fn delete(b: &mut Batch, project: &str, fp: &str) {
    b.push(format!("DELETE FROM images WHERE id = {ID_SQL}"), vec![project.into(), fp.into()]);
}

pub async fn aliases(db: &GlobalDb, project: &str) -> Result<Vec<Alias>> {
    let rows = db
        .query(&Stmt::new(
            "SELECT a.name, a.description, im.fingerprint FROM images_aliases a JOIN images im ON im.id = a.image_id
             JOIN projects p ON p.id = a.project_id WHERE p.name = ? ORDER BY a.name",
            vec![project.into()],
        ))
        .await?;
    Ok(rows.rows.iter().map(|r| Alias { name: text(r, 0), description: text(r, 1), target: text(r, 2) }).collect())
}

/// One alias, and the version a guarded write of it needs.
pub async fn alias(db: &GlobalDb, project: &str, name: &str) -> Result<(Alias, Version)> {
    let stmt = Stmt::new(
        "SELECT a.name, a.description, im.fingerprint FROM images_aliases a JOIN images im ON im.id = a.image_id
         JOIN projects p ON p.id = a.project_id WHERE p.name = ? AND a.name = ?",
        vec![project.into(), name.into()],
    );
    let [rows] = db.query_many([stmt.clone()]).await?;
    let version = version_of(vec![stmt], std::slice::from_ref(&rows));
    let r = rows.rows.first().ok_or_else(|| StoreError::NotFound("Image alias not found".into()))?;
    Ok((Alias { name: text(r, 0), description: text(r, 1), target: text(r, 2) }, version))
}

pub fn create_alias(b: &mut Batch, project: &str, a: &Alias) {
    b.require_none(
        "SELECT COUNT(*) FROM images_aliases a JOIN projects p ON p.id = a.project_id WHERE p.name = ? AND a.name = ?",
        vec![project.into(), (&a.name).into()],
        "Alias already exists",
    );
    b.require_some(
        format!("SELECT COUNT(*) FROM images WHERE id = {ID_SQL}"),
        vec![project.into(), (&a.target).into()],
        "Image not found",
    );
    b.push(
        format!(
            "INSERT INTO images_aliases (name, image_id, description, project_id)
             VALUES (?, {ID_SQL}, ?, (SELECT id FROM projects WHERE name = ?))"
        ),
        vec![(&a.name).into(), project.into(), (&a.target).into(), (&a.description).into(), project.into()],
    );
}

const ALIAS_ID: &str =
    "(SELECT a.id FROM images_aliases a JOIN projects p ON p.id = a.project_id WHERE p.name = ? AND a.name = ?)";

pub fn update_alias(b: &mut Batch, project: &str, name: &str, target: &str, description: &str) {
    b.require_some(
        format!("SELECT COUNT(*) FROM images_aliases WHERE id = {ALIAS_ID}"),
        vec![project.into(), name.into()],
        "Image alias not found",
    );
    b.require_some(
        format!("SELECT COUNT(*) FROM images WHERE id = {ID_SQL}"),
        vec![project.into(), target.into()],
        "Image not found",
    );
    b.push(
        format!("UPDATE images_aliases SET image_id = {ID_SQL}, description = ? WHERE id = {ALIAS_ID}"),
        vec![project.into(), target.into(), description.into(), project.into(), name.into()],
    );
}

pub fn rename_alias(b: &mut Batch, project: &str, name: &str, new_name: &str) {
    b.require_some(
        format!("SELECT COUNT(*) FROM images_aliases WHERE id = {ALIAS_ID}"),
        vec![project.into(), name.into()],
        "Image alias not found",
    );
    b.require_none(
        format!("SELECT COUNT(*) FROM images_aliases WHERE id = {ALIAS_ID}"),
        vec![project.into(), new_name.into()],
        "Alias already exists",
    );
    b.push(
        format!("UPDATE images_aliases SET name = ? WHERE id = {ALIAS_ID}"),
        vec![new_name.into(), project.into(), name.into()],
    );
}

pub fn delete_alias(b: &mut Batch, project: &str, name: &str) {
    b.require_some(
        format!("SELECT COUNT(*) FROM images_aliases WHERE id = {ALIAS_ID}"),
        vec![project.into(), name.into()],
        "Image alias not found",
    );
    b.push(format!("DELETE FROM images_aliases WHERE id = {ALIAS_ID}"), vec![project.into(), name.into()]);
}
