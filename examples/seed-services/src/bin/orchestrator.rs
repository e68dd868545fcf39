//! orchestrator: HTTP on $ORCHESTRATOR_PORT. `/health` calls memory and tools over gRPC (the
//! cross-service path) and answers 200 only when both are SERVING.

use seed_services::{grpc_health, port, respond, version};

#[tokio::main]
async fn main() {
    let own = port("ORCHESTRATOR_PORT");
    let memory = port("MEMORY_PORT");
    let tools = port("TOOLS_PORT");
    let listener = seed_services::bind("orchestrator", own).await;
    seed_services::notify_ready("orchestrator");
    seed_services::serve(listener, move |mut stream| async move {
        let Some(request) = seed_services::read_request(&mut stream).await else {
            return;
        };
        match request.path.as_str() {
            "/health" => {
                let (memory, tools) = tokio::join!(
                    grpc_health(memory, "memory.v1.Memory"),
                    grpc_health(tools, "tools.v1.Tools")
                );
                let ok = memory == "SERVING" && tools == "SERVING";
                let body = format!(
                    "{{\"status\":\"{}\",\"version\":\"{}\",\"memory\":\"{memory}\",\"tools\":\"{tools}\"}}\n",
                    if ok { "ok" } else { "degraded" },
                    version()
                );
                respond(&mut stream, if ok { 200 } else { 503 }, "application/json", &body, &[]).await;
            }
            "/version" => respond(&mut stream, 200, "text/plain", &(version() + "\n"), &[]).await,
            _ => respond(&mut stream, 404, "text/plain", "not found\n", &[]).await,
        }
    })
    .await;
}
