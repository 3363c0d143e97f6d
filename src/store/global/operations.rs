//! Which member owns which operation (`operations` table), so any member can find and forward
//! to the owner.

use crate::store::{Batch, Value};

pub fn insert(b: &mut Batch, uuid: &str, node_id: i64, kind: i64, project: &str) {
    b.push(
        "INSERT INTO operations (uuid, node_id, type, project_id) VALUES (?, ?, ?, (SELECT id FROM projects WHERE name = ?))",
        vec![uuid.into(), node_id.into(), kind.into(), project.into()],
    );
}

pub fn delete(b: &mut Batch, uuid: &str) {
    b.push("DELETE FROM operations WHERE uuid = ?", vec![uuid.into()]);
}

/// Forget every operation of a member (at its start: those died with the previous process).
pub fn delete_for_node(b: &mut Batch, node_id: i64) {
    b.push("DELETE FROM operations WHERE node_id = ?", vec![Value::Int(node_id)]);
}
