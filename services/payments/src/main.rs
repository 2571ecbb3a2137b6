//! The payments service alone, for deployments that run each service in its own
//! process; the same as `portal serve --service payments`.

fn main() -> std::process::ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    // Delegate to the platform's single-service runner with this service only.
    args.drain(..1);
    platform::app::run_single(std::sync::Arc::new(payments::PaymentsService), &args)
}
