//! memory: the notes store, a gRPC service (`memory.v1.Memory`, tonic-health) on $MEMORY_PORT.
//! Serving only once its store is usable: with `REQUIRES_STORE`, the directory in
//! $MEMORY_STORE must exist, else it reports NOT_SERVING for as long as it runs.

/// Whether this release keeps its notes in $MEMORY_STORE (a directory on the host).
const REQUIRES_STORE: bool = false;

#[tokio::main]
async fn main() {
    let port = seed_services::port("MEMORY_PORT");
    let serving = !REQUIRES_STORE
        || std::env::var_os("MEMORY_STORE")
            .is_some_and(|store| std::path::Path::new(&store).is_dir());
    if !serving {
        eprintln!("memory: MEMORY_STORE is not a directory on this host; reporting NOT_SERVING");
    }
    seed_services::grpc_health_server("memory", port, "memory.v1.Memory", serving).await;
}
