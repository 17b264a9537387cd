/* Test-only failpoints: the fault matrix (tests/integration/test_daemon_fault_matrix.py)
 * kills the daemon with SIGKILL at a named point of the pod lifecycle and
 * checks that the next daemon leaves nothing behind.
 *
 * CAA_FAILPOINT=<where>:<what> in the environment arms one point, e.g.
 * "state:provisioning" (right after state.json says provisioning). Compiled
 * in only with -Dfailpoints=true outside buildtype=release (adaptor/meson.build);
 * otherwise every CAA_FAILPOINT() is nothing at all. */
#pragma once

/* SIGKILLs the process when "<where>:<what>" is the armed point. Call it
 * through CAA_FAILPOINT(). */
void caa_failpoint_hit(const char *where, const char *what);

#ifdef CAA_FAILPOINTS
#    define CAA_FAILPOINT(where, what) caa_failpoint_hit((where), (what))
#else
#    define CAA_FAILPOINT(where, what) ((void)0)
#endif
