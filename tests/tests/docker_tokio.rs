//! Every Docker scenario, against the real engine, through QUIC, with
//! client and server on tokio.

use dockwire_tests::Rt;
use dockwire_tests::docker::{self, rig};

macro_rules! on_tokio {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            Rt::Tokio.block_on(async {
                let rig = rig(Rt::Tokio).await;
                docker::$name(&rig).await;
            });
        }
    )*};
}

on_tokio!(
    logs_follow_until_exit,
    a_followed_log_read_late_ends_with_every_line,
    exec_gives_output_then_exit_code,
    exec_binary_output_is_exact_on_both_carriages,
    attach_to_an_interactive_shell,
    exec_an_interactive_shell_with_a_tty,
    exec_cat_echoes_64_mib,
    exec_resize_and_signal_reach_the_process,
    run_with_mount_env_workdir_and_auto_remove,
    run_raw_with_stdin,
    run_signal_reaches_the_container,
    archive_put_then_get_round_trips,
    pull_from_the_local_registry,
    cancellation_leaves_nothing_behind,
    cancelled_run_removes_its_container,
    engine_errors_are_typed,
    container_lifecycle_and_labels,
    images_networks_and_volumes,
    a_runtime_per_container_is_honoured_or_refused,
);

#[test]
fn a_dead_engine_is_unavailable() {
    Rt::Tokio.block_on(docker::a_dead_engine_is_unavailable(Rt::Tokio));
}
