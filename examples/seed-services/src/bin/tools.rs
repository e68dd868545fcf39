//! tools: the tool runner, a gRPC service (`tools.v1.Tools`, tonic-health) on $TOOLS_PORT.

#[tokio::main]
async fn main() {
    let port = seed_services::port("TOOLS_PORT");
    seed_services::grpc_health_server("tools", port, "tools.v1.Tools", true).await;
}
