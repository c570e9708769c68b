//! Where plugin files installed over the API go: [`PluginFiles`]. On one
//! host, its plugins directory (`plugins::install::Directory`); on
//! a cluster, the object store every host copies into its own directory
//! (`nats::plugins`). Either way the directory's hot reload loads
//! them, with the same rules as files copied there by hand.

/// The plugin files installed over the API.
#[async_trait::async_trait]
pub trait PluginFiles: std::fmt::Debug + Send + Sync {
    /// Puts plugin `name`'s module and manifest (`NAME.wasm`, then
    /// `NAME.toml`: a manifest never loads beside an old module); whether
    /// either was there.
    async fn put(&self, name: &str, wasm: Vec<u8>, manifest: Vec<u8>) -> std::io::Result<bool>;

    /// Removes plugin `name`'s files, the manifest first; whether either
    /// was there.
    async fn remove(&self, name: &str) -> std::io::Result<bool>;
}
