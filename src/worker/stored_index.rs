//! The user's photo index kept in this browser's IndexedDB (one entry per model), so a reload
//! or another visit finds it again; the worker's memory holds the one in use. An entry is the
//! `.idx` file's bytes (docs/INDEX_FORMAT.md), checked against the model when read back.

use idb::{DatabaseEvent, Factory, ObjectStoreParams, TransactionMode};
use wasm_bindgen::JsValue;

const DB: &str = "convlens";
const STORE: &str = "photo-indexes";

fn why(e: idb::Error) -> String {
    format!("this browser's storage (IndexedDB): {e}")
}

async fn open() -> Result<idb::Database, String> {
    let mut req = Factory::new().map_err(why)?.open(DB, Some(1)).map_err(why)?;
    req.on_upgrade_needed(|event| {
        if let Ok(db) = event.database() {
            let _ = db.create_object_store(STORE, ObjectStoreParams::new());
        }
    });
    req.await.map_err(why)
}

pub async fn put(key: &str, bytes: &[u8]) -> Result<(), String> {
    let db = open().await?;
    let tx = db.transaction(&[STORE], TransactionMode::ReadWrite).map_err(why)?;
    let store = tx.object_store(STORE).map_err(why)?;
    // Awaiting the request would let the transaction end on its own; commit waits for it.
    let _request = store.put(&js_sys::Uint8Array::from(bytes).into(), Some(&JsValue::from_str(key))).map_err(why)?;
    tx.commit().map_err(why)?.await.map_err(why)?;
    db.close();
    Ok(())
}

pub async fn get(key: &str) -> Result<Option<Vec<u8>>, String> {
    let db = open().await?;
    let tx = db.transaction(&[STORE], TransactionMode::ReadOnly).map_err(why)?;
    let store = tx.object_store(STORE).map_err(why)?;
    let value = store.get(JsValue::from_str(key)).map_err(why)?.await.map_err(why)?;
    db.close();
    Ok(value.map(|v| js_sys::Uint8Array::new(&v).to_vec()))
}

pub async fn delete(key: &str) -> Result<(), String> {
    let db = open().await?;
    let tx = db.transaction(&[STORE], TransactionMode::ReadWrite).map_err(why)?;
    let store = tx.object_store(STORE).map_err(why)?;
    let _request = store.delete(JsValue::from_str(key)).map_err(why)?;
    tx.commit().map_err(why)?.await.map_err(why)?;
    db.close();
    Ok(())
}
