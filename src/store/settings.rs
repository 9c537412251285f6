//! Deployment-wide values kept in the `settings` table.

use rand::RngCore;

use super::Db;
use crate::error::Result;

/// `bytes` from the operating system's generator, as hex.
fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// This deployment's identity, created on first use: `/.well-known/gatehouse` answers with it so
/// the doctor can tell that system_url reaches *this* instance and not another one.
pub async fn instance_id(db: &Db) -> Result<String> {
    let fresh = random_hex(16);
    sqlx::query("INSERT INTO settings (key, value) VALUES ('instance_id', $1) ON CONFLICT (key) DO NOTHING")
        .bind(fresh)
        .execute(db.pool())
        .await?;
    Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = 'instance_id'").fetch_one(db.pool()).await?)
}

/// Which storage a process keeps its accounts and sessions in, as an opaque id: the instance
/// id, and where a store is a file or folder (a SQLite database, a sessions folder) that file's
/// identity on disk, hashed with `key` (`storage_key`, kept in the database: the id is public,
/// the inode behind it is not). A folder copied to another node (SQLite and all) keeps the
/// instance id and the key but not the inode, so two nodes that do not share storage differ,
/// while nodes sharing one PostgreSQL database, or one file over a network mount, agree. Worked
/// out when asked (a folder created after `serve` started counts as it is now);
/// `/.well-known/gatehouse` answers with it, and the doctor compares what every node says.
pub fn storage_id(key: &str, instance_id: &str, files: &[&std::path::Path]) -> String {
    use sha2::Digest;
    use std::os::unix::fs::MetadataExt;
    let mut hash = sha2::Sha256::new();
    hash.update(key.as_bytes());
    hash.update(instance_id.as_bytes());
    for file in files {
        let inode = std::fs::metadata(file).map(|m| m.ino()).unwrap_or(0);
        hash.update(inode.to_le_bytes());
    }
    hex::encode(&hash.finalize()[..8])
}

/// The key `storage_id` hashes with, created on first use and shared by every node.
pub async fn storage_key(db: &Db) -> Result<String> {
    let fresh = random_hex(32);
    sqlx::query("INSERT INTO settings (key, value) VALUES ('storage_key', $1) ON CONFLICT (key) DO NOTHING")
        .bind(fresh)
        .execute(db.pool())
        .await?;
    Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = 'storage_key'").fetch_one(db.pool()).await?)
}

/// The key that signs the CSRF tokens of visitors who are not signed in (see
/// `web::form_token`), created on first use and shared by every node.
pub async fn form_key(db: &Db) -> Result<String> {
    let fresh = random_hex(32);
    sqlx::query("INSERT INTO settings (key, value) VALUES ('form_key', $1) ON CONFLICT (key) DO NOTHING")
        .bind(fresh)
        .execute(db.pool())
        .await?;
    Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = 'form_key'").fetch_one(db.pool()).await?)
}

/// The instance id if `serve` has created one; reading never creates it.
pub async fn existing_instance_id(db: &Db) -> Result<Option<String>> {
    existing(db, "instance_id").await
}

/// The storage key if `serve` has created one; reading never creates it (the doctor looks, and
/// writes nothing).
pub async fn existing_storage_key(db: &Db) -> Result<Option<String>> {
    existing(db, "storage_key").await
}

async fn existing(db: &Db, key: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = $1").bind(key).fetch_optional(db.pool()).await?)
}
