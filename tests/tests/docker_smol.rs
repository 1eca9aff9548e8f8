//! The Docker scenarios that matter most for a second runtime, against
//! the real engine, through QUIC, with client and server on smol (bollard
//! itself runs its I/O on async-compat's tokio thread).

use dockwire_tests::Rt;
use dockwire_tests::docker::{self, rig};

macro_rules! on_smol {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            Rt::Smol.block_on(async {
                let rig = rig(Rt::Smol).await;
                docker::$name(&rig).await;
            });
        }
    )*};
}

on_smol!(
    logs_follow_until_exit,
    a_followed_log_read_late_ends_with_every_line,
    exec_gives_output_then_exit_code,
    exec_binary_output_is_exact_on_both_carriages,
    attach_to_an_interactive_shell,
    exec_cat_echoes_64_mib,
    exec_resize_and_signal_reach_the_process,
    run_with_mount_env_workdir_and_auto_remove,
    run_raw_with_stdin,
    run_signal_reaches_the_container,
    cancellation_leaves_nothing_behind,
    cancelled_run_removes_its_container,
);

#[test]
fn a_dead_engine_is_unavailable() {
    Rt::Smol.block_on(docker::a_dead_engine_is_unavailable(Rt::Smol));
}
