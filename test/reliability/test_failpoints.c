/*
 * Every failure point of a whole session, one at a time: allocation,
 * mmap, sendmsg/recvmsg, read/write (pread/pwrite, readv/writev) and the
 * device's callbacks fail at the N-th call, for N = 1, 2, ... until a
 * session makes fewer calls, first on the server's thread (its set-up
 * included), then on the client's. For each N:
 *
 *   - the failure shows as an error: a set-up call fails, or a step of the
 *     session returns one (a reply's errno, or ENOTCONN when the server
 *     closed the connection); or it changes nothing at all (absorbed:
 *     every step as without failures) - nothing in between;
 *   - the server keeps working: it never leaves vfu_run_ctx() but for the
 *     client leaving, and serves the next client's whole session exactly
 *     as without failures;
 *   - nothing leaks: open fds and mappings of the test's memory files
 *     counted before and after, and (under ASan) no memory.
 *
 * Each point is reported: its number, the call that failed, where, and
 * what it gave.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "failpoint.h"
#include "rel.h"

static struct rel_session base;
static int problems;
/* What the points gave: an error, the connection closed, nothing. */
static int nr_error, nr_closed, nr_absorbed, nr_setup;

static void
problem(unsigned long n, const char *what)
{
    printf("  point %lu: FAILED: %s\n", n, what);
    problems++;
}

/* One run with the N-th call of the server's (or client's) thread failing. */
static bool
run_point(unsigned long n, bool server_side, unsigned long *totals)
{
    struct rel_server s;
    struct rel_session run, verify;
    int fds0 = rel_count_fds(), maps0 = rel_count_maps();
    enum fp_kind kind = FP_NR_KINDS;
    void *site = NULL;
    char outcome[256];
    const char *where;
    bool hit;
    int d;

    fp_arm(n);
    rel_server_start(&s, server_side);
    if (s.setup_errno != 0) {
        hit = fp_hit(&kind, &site);
        where = fp_hit_where();
        nr_setup++;
        rel_server_join(&s);
        snprintf(outcome, sizeof(outcome), "set-up: %s failed: %s",
                 s.setup_call, strerror(s.setup_errno));
        if (!hit) {
            problem(n, "set-up failed without a failure");
        }
    } else {
        if (!server_side) {
            fp_count_thread(true);
        }
        rel_session_run(s.path, true, &run);
        fp_count_thread(false);
        if (run.steps[0].ret == 0) {
            rel_server_wait_first(&s);  /* else it never had a client */
        }
        hit = fp_hit(&kind, &site);
        where = fp_hit_where();
        if (!hit) {
            *totals = fp_calls();
        }
        /* The next client: served as if nothing had happened. */
        fp_arm(0);
        rel_server_stop(&s);
        rel_session_run(s.path, true, &verify);
        rel_server_join(&s);
        if (s.run_errno != 0) {
            snprintf(outcome, sizeof(outcome), "vfu_run_ctx() failed: %s",
                     strerror(s.run_errno));
            problem(n, outcome);
        }
        if ((d = rel_session_diff(&verify, &base)) >= 0) {
            snprintf(outcome, sizeof(outcome), "next client differs at '%s'",
                     verify.steps[d].name);
            problem(n, outcome);
        }
        d = rel_session_diff(&run, &base);
        if (!hit) {
            if (d >= 0) {
                problem(n, "a run without failure differs");
            }
            return false;
        }
        if (d < 0) {
            snprintf(outcome, sizeof(outcome), "absorbed");
            nr_absorbed++;
        } else if (rel_session_failed(&run) >= 0) {
            int f = rel_session_failed(&run);
            if (run.steps[f].err == ENOTCONN) {
                nr_closed++;
            } else {
                nr_error++;
            }
            snprintf(outcome, sizeof(outcome), "'%s' failed: %s%s",
                     run.steps[f].name, strerror(run.steps[f].err),
                     f < d ? "" : " (earlier steps as usual)");
            if (d < f) {
                snprintf(outcome, sizeof(outcome),
                         "'%s' gave another result without an error",
                         run.steps[d].name);
                problem(n, outcome);
            }
        } else {
            snprintf(outcome, sizeof(outcome),
                     "'%s' gave another result without an error",
                     run.steps[d].name);
            problem(n, outcome);
        }
    }
    if (rel_count_fds() != fds0) {
        snprintf(outcome + strlen(outcome), sizeof(outcome) - strlen(outcome),
                 "; %d fds leaked", rel_count_fds() - fds0);
        problem(n, "fds leaked");
    }
    if (rel_count_maps() != maps0) {
        problem(n, "mappings leaked");
    }
    printf("  %4lu  %-14s %-28s %s\n", n, fp_kind_name(kind), where,
           outcome);
    return true;
}

static void
walk(bool server_side)
{
    unsigned long total = 0, n;

    printf("%s side: every failure point of a session\n",
           server_side ? "server" : "client");
    printf("  %4s  %-14s %-28s %s\n", "N", "call", "in", "gave");
    if (getenv("REL_POINT") != NULL) {
        /* One point only, e.g. with REL_LOG=1 to see what it does. */
        n = strtoul(getenv("REL_POINT"), NULL, 0);
        (void)run_point(n, server_side, &total);
        return;
    }
    for (n = 1; run_point(n, server_side, &total); n++) {
    }
    printf("%s side: %lu points: %d in set-up (its call failed), %d an "
           "error, %d the connection closed (ENOTCONN), %d absorbed\n\n",
           server_side ? "server" : "client", n - 1, nr_setup, nr_error,
           nr_closed, nr_absorbed);
    nr_setup = nr_error = nr_closed = nr_absorbed = 0;
    if (total != n - 1) {
        problem(n, "the points counted differ from the calls made");
    }
}

int
main(void)
{
    struct rel_server s;
    struct rel_session verify;
    int fds0 = rel_count_fds();

    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Without failures: every step succeeds, twice the same. */
    fp_arm(0);
    rel_server_start(&s, false);
    if (s.setup_errno != 0) {
        printf("device set-up failed: %s\n", strerror(s.setup_errno));
        return 1;
    }
    rel_session_run(s.path, true, &base);
    rel_server_wait_first(&s);
    rel_server_stop(&s);
    rel_session_run(s.path, true, &verify);
    rel_server_join(&s);
    if (rel_session_failed(&base) >= 0 || rel_session_diff(&base, &verify) >= 0 ||
        rel_count_fds() != fds0) {
        int f = rel_session_failed(&base);
        printf("a session without failures fails at '%s': %s\n",
               f >= 0 ? base.steps[f].name : "?",
               f >= 0 ? strerror(base.steps[f].err) : "differs");
        return 1;
    }
    printf("a session is %d steps\n\n", base.n);
    walk(true);
    walk(false);
    printf("%d problems\n", problems);
    return problems != 0;
}
