//! The gateway alone, for deployments that run each service in its own process;
//! the same as `portal serve --service gateway`.

fn main() -> std::process::ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    args.drain(..1);
    platform::app::run_single(std::sync::Arc::new(gateway::GatewayService), &args)
}
