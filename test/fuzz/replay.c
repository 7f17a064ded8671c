/*
 * main() of the replay runners: feeds a fuzzer's LLVMFuzzerTestOneInput()
 * every file named on the command line, or found in a directory named
 * there, in name order, without libFuzzer. `make test` replays the seed
 * corpora and every regression input this way (built with gcc, and under
 * ASan + UBSan by `make test-asan`). A finding aborts, as under libFuzzer.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int
replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long len;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        if (f != NULL) {
            fclose(f);
        }
        return -1;
    }
    buf = malloc(len > 0 ? (size_t)len : 1);
    if (buf == NULL || fread(buf, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "%s: cannot read\n", path);
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    fprintf(stderr, "replay %s (%ld bytes)\n", path, len);
    LLVMFuzzerTestOneInput(buf, (size_t)len);
    free(buf);
    return 0;
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int
main(int argc, char **argv)
{
    int count = 0, status = 0;

    for (int i = 1; i < argc; i++) {
        struct dirent **names;
        struct stat st;
        int n;

        if (stat(argv[i], &st) < 0) {
            fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            status |= replay_file(argv[i]);
            count++;
            continue;
        }
        n = scandir(argv[i], &names, NULL, by_name);
        for (int j = 0; j < n; j++) {
            char path[4096];

            if (names[j]->d_name[0] != '.' &&
                snprintf(path, sizeof(path), "%s/%s", argv[i],
                         names[j]->d_name) < (int)sizeof(path)) {
                status |= replay_file(path);
                count++;
            }
            free(names[j]);
        }
        free(names);
    }
    printf("%d inputs replayed\n", count);
    return status != 0;
}
