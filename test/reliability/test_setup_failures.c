/*
 * A device's set-up under failure: the N-th allocation (or other failure
 * point) of vfu_create_ctx() and of the set-up calls fails, for every N
 * until set-up completes. The failing call must return its error, and
 * after vfu_destroy_ctx() every fd is as before: none leaked, and none
 * closed that the library did not own (a context that failed early used
 * to close fd 0).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "failpoint.h"
#include "rel.h"

int
main(void)
{
    int problems = 0;
    unsigned long n;

    setvbuf(stdout, NULL, _IOLBF, 0);
    for (n = 1;; n++) {
        struct rel_server s;
        int fds0 = rel_count_fds();
        enum fp_kind kind;
        void *site;
        vfu_client_t *c;

        fp_arm(n);
        rel_server_start(&s, true);
        if (s.setup_errno == 0) {
            /* Set up without a failure: done. Let the server go. */
            fp_arm(0);
            rel_server_stop(&s);
            c = vfu_client_connect(s.path);
            vfu_client_close(c);
            rel_server_join(&s);
            break;
        }
        rel_server_join(&s);
        if (!fp_hit(&kind, &site)) {
            printf("  %lu: %s failed without a failure\n", n, s.setup_call);
            problems++;
            continue;
        }
        printf("  %3lu  %-14s %-28s %s: %s\n", n, fp_kind_name(kind),
               fp_hit_where(), s.setup_call, strerror(s.setup_errno));
        if (rel_count_fds() != fds0) {
            printf("  %lu: %d fds %s\n", n, rel_count_fds() - fds0,
                   rel_count_fds() > fds0 ? "leaked" : "closed that were not "
                   "the library's");
            problems++;
        }
    }
    printf("%lu failure points in set-up, %d problems\n", n - 1, problems);
    return problems != 0;
}
